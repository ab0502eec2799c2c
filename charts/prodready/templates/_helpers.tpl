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

{{/* The pod's affinity: the user's keys over the defaults (the image's architectures as a
     required node affinity term, a preferred anti-affinity across nodes). */}}
{{- define "prodready.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) }}
{{- if and .Values.image.architectures (not (hasKey $affinity "nodeAffinity")) }}
{{- $arch := dict "key" "kubernetes.io/arch" "operator" "In" "values" .Values.image.architectures }}
{{- $term := dict "matchExpressions" (list $arch) }}
{{- $_ := set $affinity "nodeAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (dict "nodeSelectorTerms" (list $term))) }}
{{- end }}
{{- if not (hasKey $affinity "podAntiAffinity") }}
{{- $selector := dict "matchLabels" (include "prodready.selectorLabels" . | fromYaml) }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" $selector }}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) }}
{{- end }}
{{- toYaml $affinity }}
{{- end }}

{{/* Checks JSON schema cannot express (it cannot compare two values): fails the render
     with a sentence that says what to change. */}}
{{- define "prodready.validate" -}}
{{- $sleep := int .Values.preStopSleepSeconds }}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- if ge $sleep $grace }}
{{- fail (printf "preStopSleepSeconds (%d) must be less than terminationGracePeriodSeconds (%d): the kubelet kills the container when the grace period ends, so the operator would never get to release its Lease; lower preStopSleepSeconds or raise terminationGracePeriodSeconds" $sleep $grace) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "string" .Values.podDisruptionBudget.minAvailable)) }}
{{- if ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be less than replicaCount (%d): otherwise no pod may ever be evicted and every node drain blocks" (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- end }}
