{{/*
canary-router.image is the router's image reference: image.digest pins it
when set, else image.tag, else v<appVersion>, the release this chart ships.
*/}}
{{- define "canary-router.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}
{{- end -}}
{{- end -}}

{{/*
canary-router.checkNamespaces refuses a release namespace the router must
not live in. The router's own namespace is never routed (the webhooks'
namespaceSelectors and the admission policies exclude it), so installing
into default or Istio's namespace would silently leave that namespace's
pods out of every rollout; the kube-* namespaces are excluded already.
Helm's default namespace is default, so this also catches a forgotten -n.
*/}}
{{- define "canary-router.checkNamespaces" -}}
{{- $ns := .Release.Namespace -}}
{{- if has $ns (list "default" "kube-system" "kube-public" "kube-node-lease") -}}
{{- fail (printf "the release namespace is %q: install canary-router into a namespace of its own, which its webhooks never route, e.g. `-n canary-router-system --create-namespace`" $ns) -}}
{{- end -}}
{{- if eq $ns .Values.istio.namespace -}}
{{- fail (printf "the release namespace %q is Istio's (istio.namespace): install canary-router into a namespace of its own, which its webhooks never route, e.g. `-n canary-router-system --create-namespace`" $ns) -}}
{{- end -}}
{{- end -}}
