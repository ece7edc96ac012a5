package certs

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Keys of the CA Secret. tls.crt and tls.key follow the kubernetes.io/tls
// convention so standard tooling can read the signing CA; the rollover
// slots sit beside them.
const (
	keyCurrentCert  = corev1.TLSCertKey
	keyCurrentKey   = corev1.TLSPrivateKeyKey
	keyNextCert     = "next.crt"
	keyNextKey      = "next.key"
	keyPreviousCert = "previous.crt"

	annotationStagedAt   = "canary-router.io/ca-staged-at"
	annotationPromotedAt = "canary-router.io/ca-promoted-at"
)

// authorityFromSecret decodes the CA Secret. Any unreadable part makes the
// whole Secret unusable: guessing which half of a damaged rollover to keep
// could leave a CA that some replica serves from out of the bundle.
func authorityFromSecret(s *corev1.Secret) (*Authority, error) {
	cur, err := ParseKeyPair(s.Data[keyCurrentCert], s.Data[keyCurrentKey])
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", keyCurrentCert, keyCurrentKey, err)
	}
	if err := checkCA(cur); err != nil {
		return nil, fmt.Errorf("%s: %w", keyCurrentCert, err)
	}
	a := &Authority{Current: cur}
	if _, ok := s.Data[keyNextCert]; ok {
		if a.Next, err = ParseKeyPair(s.Data[keyNextCert], s.Data[keyNextKey]); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", keyNextCert, keyNextKey, err)
		}
		if err := checkCA(a.Next); err != nil {
			return nil, fmt.Errorf("%s: %w", keyNextCert, err)
		}
		// Without a readable stage time, count from the staged CA's
		// NotBefore; promotion still waits for the bundle to trust it.
		a.StagedAt = annotationTime(s, annotationStagedAt, a.Next.Cert.NotBefore)
	}
	if pemBytes, ok := s.Data[keyPreviousCert]; ok {
		if a.Previous, err = ParseCert(pemBytes); err != nil {
			return nil, fmt.Errorf("%s: %w", keyPreviousCert, err)
		}
		a.PromotedAt = annotationTime(s, annotationPromotedAt, cur.Cert.NotBefore)
	}
	return a, nil
}

// writeAuthority replaces the Secret's data and rollover annotations with
// a, keeping its other metadata.
func writeAuthority(s *corev1.Secret, a *Authority) {
	s.Data = map[string][]byte{
		keyCurrentCert: a.Current.CertPEM,
		keyCurrentKey:  a.Current.KeyPEM,
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	delete(s.Annotations, annotationStagedAt)
	delete(s.Annotations, annotationPromotedAt)
	if a.Next != nil {
		s.Data[keyNextCert] = a.Next.CertPEM
		s.Data[keyNextKey] = a.Next.KeyPEM
		s.Annotations[annotationStagedAt] = a.StagedAt.UTC().Format(time.RFC3339Nano)
	}
	if a.Previous != nil {
		s.Data[keyPreviousCert] = encodeCert(a.Previous)
		s.Annotations[annotationPromotedAt] = a.PromotedAt.UTC().Format(time.RFC3339Nano)
	}
}

func annotationTime(s *corev1.Secret, key string, fallback time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s.Annotations[key])
	if err != nil {
		return fallback
	}
	return t
}

// secretClient reads and writes the CA Secret, naming the verb and object
// in every error so a missing permission is obvious from the log.
type secretClient struct {
	client          kubernetes.Interface
	namespace, name string
}

// get returns the Secret, or nil when it does not exist.
func (c *secretClient) get(ctx context.Context) (*corev1.Secret, error) {
	s, err := c.client.CoreV1().Secrets(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.wrap("get", err)
	}
	return s, nil
}

// create stores a as a new Secret. An AlreadyExists error is returned as
// is: another replica won the race and the caller re-reads its CA.
func (c *secretClient) create(ctx context.Context, a *Authority) error {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      c.name,
			Namespace: c.namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "canary-router",
				"app.kubernetes.io/component":  "webhook-ca",
				"app.kubernetes.io/managed-by": "canary-router",
			},
		},
		Type: corev1.SecretTypeTLS,
	}
	writeAuthority(s, a)
	_, err := c.client.CoreV1().Secrets(c.namespace).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return err
	}
	return c.wrap("create", err)
}

// update writes a into s, guarded by s's resourceVersion: a Conflict means
// another replica moved the rollover first and is returned as is.
func (c *secretClient) update(ctx context.Context, s *corev1.Secret, a *Authority) error {
	s = s.DeepCopy()
	writeAuthority(s, a)
	_, err := c.client.CoreV1().Secrets(c.namespace).Update(ctx, s, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return err
	}
	return c.wrap("update", err)
}

func (c *secretClient) wrap(verb string, err error) error {
	if err == nil {
		return nil
	}
	return &APIError{Verb: verb, Resource: "secrets", Namespace: c.namespace, Name: c.name, Err: err}
}
