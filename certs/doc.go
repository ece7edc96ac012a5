// Package certs supplies the router's TLS serving certificate, in one of two
// modes.
//
// Self-managed (the default): a CA kept in a Secret in the router's
// namespace, created by whichever replica gets there first; a serving
// certificate issued from it and held only in memory; both renewed at two
// thirds of their lifetime; and the CA bundle patched into the router's own
// MutatingWebhookConfiguration and ValidatingWebhookConfiguration. A CA
// change is a three-step rollover (stage, promote, retire) so the bundle
// always trusts every CA a replica may be serving from; docs/certificates.md
// explains the timeline and its bound.
//
// External: tls.crt and tls.key from a folder (cert-manager or any other
// issuer), reloaded on change by controller-runtime's certwatcher; the
// router leaves caBundle alone.
//
// The decisions (is a certificate due for renewal, which rollover step is
// next, does a webhook need a patch) are pure functions of their inputs and
// a time, so tests move the clock instead of waiting.
package certs
