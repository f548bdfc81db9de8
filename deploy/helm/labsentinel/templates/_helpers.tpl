{{- define "labsentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "labsentinel.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "labsentinel.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "labsentinel.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "labsentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "labsentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "labsentinel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "labsentinel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "labsentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "labsentinel.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "labsentinel.secretName" -}}
{{- default (include "labsentinel.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "labsentinel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The site's labsentinel.toml: values config.toml, else the chart's files/labsentinel.toml. */}}
{{- define "labsentinel.toml" -}}
{{- if .Values.config.toml -}}
{{- .Values.config.toml -}}
{{- else -}}
{{- .Files.Get "files/labsentinel.toml" -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by the daemon and the migration init container. */}}
{{- define "labsentinel.env" -}}
- name: LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: LABSENTINEL_API_HOST
  value: "0.0.0.0"
- name: LABSENTINEL_API_PORT
  value: {{ .Values.service.port | quote }}
- name: LABSENTINEL_API_BASE_URL
  value: {{ .Values.api.baseUrl | quote }}
- name: LABSENTINEL_METRICS_HOST
  value: "0.0.0.0"
- name: LABSENTINEL_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}
