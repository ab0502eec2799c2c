{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "prodready.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart name appended unless already in it. */}}
{{- define "prodready.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "prodready.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "prodready.labels" -}}
helm.sh/chart: {{ include "prodready.chart" . }}
{{ include "prodready.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "prodready.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prodready.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "prodready.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prodready.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "prodready.leaseName" -}}
{{- default (printf "%s-leader" (include "prodready.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "prodready.webhookServiceName" -}}
{{- printf "%s-webhook" (include "prodready.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "prodready.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "prodready.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "prodready.metricsServiceName" -}}
{{- printf "%s-metrics" (include "prodready.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ValidatingWebhookConfiguration's name (cluster-scoped). */}}
{{- define "prodready.webhookConfigurationName" -}}
{{- include "prodready.fullname" . }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given (the digest wins). */}}
{{- define "prodready.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "prodready.issuerName" -}}
{{- default (printf "%s-selfsigned" (include "prodready.fullname" .)) .Values.certManager.issuerRef.name }}
{{- end }}
