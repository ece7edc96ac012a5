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
