{{/*
Names, labels and the choices every template shares (secret source, API versions the cluster serves).
*/}}

{{- define "smart-trader.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "smart-trader.fullname" -}}
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

{{- define "smart-trader.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of every pod of the release (roles and the migration Job). */}}
{{- define "smart-trader.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smart-trader.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "smart-trader.labels" -}}
helm.sh/chart: {{ include "smart-trader.chart" . }}
{{ include "smart-trader.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smart-trader
{{- end }}

{{/* Labels of one role: call with (dict "root" $ "role" "api"). */}}
{{- define "smart-trader.roleSelectorLabels" -}}
{{ include "smart-trader.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "smart-trader.roleLabels" -}}
{{ include "smart-trader.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "smart-trader.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smart-trader.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "smart-trader.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
Where the application's secrets come from: "external" (an ExternalSecret of external-secrets.io), "existing" (a
Secret the operator made) or "values" (a Secret this chart makes from secrets.values).
*/}}
{{- define "smart-trader.secretMode" -}}
{{- if .Values.secrets.externalSecret.enabled }}external
{{- else if .Values.secrets.existingSecret }}existing
{{- else }}values
{{- end }}
{{- end }}

{{/* Name of the Secret holding SECRET_KEY, DATABASE_URL, REDIS_URL, METRICS_TOKEN, ... */}}
{{- define "smart-trader.secretName" -}}
{{- if eq (include "smart-trader.secretMode" .) "existing" }}
{{- .Values.secrets.existingSecret }}
{{- else if eq (include "smart-trader.secretMode" .) "external" }}
{{- default (include "smart-trader.fullname" .) .Values.secrets.externalSecret.targetName }}
{{- else }}
{{- include "smart-trader.fullname" . }}
{{- end }}
{{- end }}

{{/*
Secret the migration hook reads DATABASE_URL from. Hooks run before the release's own objects exist, so in
"values" and "external" modes a hook copy is made (and deleted once the migration succeeded); an existing Secret
is read directly.
*/}}
{{- define "smart-trader.migrationSecretName" -}}
{{- $mode := include "smart-trader.secretMode" . }}
{{- if or (eq $mode "existing") (and (eq $mode "external") (not (include "smart-trader.hasExternalSecretsApi" .))) }}
{{- include "smart-trader.secretName" . }}
{{- else }}
{{- printf "%s-migrate" (include "smart-trader.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
API versions, chosen from what the cluster serves. `helm template` reports its own built-in list whatever
--kube-version says, so the Kubernetes version is checked too: on a 1.20 cluster (or --kube-version 1.20.0) the
older APIs are used, and objects with no API there are left out.
*/}}
{{- define "smart-trader.hpaApiVersion" -}}
{{- $v := .Capabilities.KubeVersion.Version }}
{{- if and (.Capabilities.APIVersions.Has "autoscaling/v2") (semverCompare ">=1.23.0-0" $v) }}autoscaling/v2
{{- else if and (.Capabilities.APIVersions.Has "autoscaling/v2beta2") (semverCompare "<1.26.0-0" $v) }}autoscaling/v2beta2
{{- end }}
{{- end }}

{{- define "smart-trader.pdbApiVersion" -}}
{{- $v := .Capabilities.KubeVersion.Version }}
{{- if and (.Capabilities.APIVersions.Has "policy/v1") (semverCompare ">=1.21.0-0" $v) }}policy/v1
{{- else if and (.Capabilities.APIVersions.Has "policy/v1beta1") (semverCompare "<1.25.0-0" $v) }}policy/v1beta1
{{- end }}
{{- end }}

{{- define "smart-trader.hasMonitoringApi" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{- end }}
{{- end }}

{{- define "smart-trader.hasExternalSecretsApi" -}}
{{- if .Capabilities.APIVersions.Has "external-secrets.io/v1beta1" }}true{{- end }}
{{- end }}

{{/* The pod-level securityContext every pod of the chart runs with. */}}
{{- define "smart-trader.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "smart-trader.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* Environment every container gets: the ConfigMap of settings, then the Secret. */}}
{{- define "smart-trader.envFrom" -}}
- configMapRef:
    name: {{ include "smart-trader.fullname" . }}
- secretRef:
    name: {{ include "smart-trader.secretName" . }}
{{- end }}

{{- define "smart-trader.fixedEnv" -}}
- name: SMART_TRADER_HOME
  value: {{ .Values.home.mountPath | quote }}
- name: TMPDIR
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: MPLCONFIGDIR
  value: /tmp/.matplotlib
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The PersistentVolumeClaim every role mounts as SMART_TRADER_HOME (empty when sharedHome is off): the operator's
existingClaim, or <fullname>-home made by this chart (templates/pvc.yaml).
*/}}
{{- define "smart-trader.homeClaimName" -}}
{{- if .Values.sharedHome.enabled }}
{{- default (printf "%s-home" (include "smart-trader.fullname" .)) .Values.sharedHome.existingClaim }}
{{- end }}
{{- end }}
