{{/* Chart name, cut to the 63 characters of a DNS label. */}}
{{- define "payments.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already holds the chart's. */}}
{{- define "payments.fullname" -}}
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

{{- define "payments.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "api"). */}}
{{- define "payments.labels" -}}
helm.sh/chart: {{ include "payments.chart" .ctx }}
{{ include "payments.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: payments
{{- end }}

{{/* Selector labels: immutable in a Deployment, so nothing that changes. */}}
{{- define "payments.selectorLabels" -}}
app.kubernetes.io/name: {{ include "payments.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "payments.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "payments.secretName" -}}
{{- default (include "payments.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "payments.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "payments.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Secret keys and whether a process needs them. Pods that lack a required key
stay in CreateContainerConfigError, which names it, rather than crash-looping.
*/}}
{{- define "payments.secretKeys" -}}
DATABASE_URL: {required: true, api: true, worker: true, migrations: true}
PAYMENTS_SHARDS: {required: false, api: true, worker: true, migrations: true}
PAYMENTS_ADMIN_TOKEN: {required: true, api: true, worker: false, migrations: false}
PAYMENTS_ENCRYPTION_KEY: {required: false, api: true, worker: true, migrations: false}
PAYMENTS_ENCRYPTION_KEYS: {required: false, api: true, worker: true, migrations: false}
STRIPE_SECRET_KEY: {required: false, api: true, worker: true, migrations: false}
STRIPE_WEBHOOK_SECRET: {required: false, api: true, worker: true, migrations: false}
REDIS_URL: {required: true, api: true, worker: true, migrations: false}
{{- end }}

{{/* env entries read from the Secret; call with (dict "ctx" $ "component" "api"). */}}
{{- define "payments.secretEnv" -}}
{{- $name := include "payments.secretName" .ctx }}
{{- $keys := include "payments.secretKeys" . | fromYaml }}
{{- range $key := keys $keys | sortAlpha }}
{{- $k := get $keys $key }}
{{- if get $k $.component }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $key }}
      {{- if not $k.required }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Scheduling and security shared by every pod; call with (dict "ctx" $ "component" "api"). */}}
{{- define "payments.podCommon" -}}
{{- $ := .ctx }}
automountServiceAccountToken: false
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $.Values.podSecurityContext | nindent 2 }}
{{- with $.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and $.Values.topologySpread.enabled (ne .component "migrations") }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: {{ $.Values.topologySpread.topologyKey }}
    whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "payments.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{/* Pod annotations: pods roll when the ConfigMap or the chart's Secret changes. */}}
{{- define "payments.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.existingSecret }}
checksum/secret: {{ toJson .Values.secrets | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Go's soft memory limit from the container's memory limit, in bytes. */}}
{{- define "payments.gomemlimit" -}}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end }}

{{/* Whether to render the ServiceMonitor. */}}
{{- define "payments.serviceMonitorEnabled" -}}
{{- $e := .Values.serviceMonitor.enabled }}
{{- if or (eq (toString $e) "true") (and (eq (toString $e) "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}true{{ end }}
{{- end }}

{{/* A NetworkPolicy egress rule; call with (dict "ports" list "to" list) or cidrs/except. */}}
{{- define "payments.egressRule" -}}
- ports:
    {{- range .ports }}
    - port: {{ . }}
      protocol: TCP
    {{- if $.udp }}
    - port: {{ . }}
      protocol: UDP
    {{- end }}
    {{- end }}
  {{- if .to }}
  to:
    {{- toYaml .to | nindent 4 }}
  {{- else if .cidrs }}
  to:
    {{- range $cidr := .cidrs }}
    - ipBlock:
        cidr: {{ $cidr }}
        {{- $v6 := contains ":" $cidr }}
        {{- $except := list }}
        {{- range $.except }}
        {{- if eq (contains ":" .) $v6 }}
        {{- $except = append $except . }}
        {{- end }}
        {{- end }}
        {{- with $except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
  {{- end }}
{{- end }}

{{/* Egress of every pod: DNS, PostgreSQL, Redis, Stripe and webhook endpoints. */}}
{{- define "payments.egress" -}}
{{- $e := . }}
{{ include "payments.egressRule" (dict "ports" $e.dns.ports "to" $e.dns.to "udp" true) }}
{{ include "payments.egressRule" (dict "ports" $e.postgresql.ports "to" $e.postgresql.to) }}
{{ include "payments.egressRule" (dict "ports" $e.redis.ports "to" $e.redis.to) }}
{{ include "payments.egressRule" (dict "ports" $e.stripe.ports "cidrs" $e.stripe.cidrs "except" $e.stripe.except) }}
{{ include "payments.egressRule" (dict "ports" $e.webhooks.ports "cidrs" $e.webhooks.cidrs "except" $e.webhooks.except) }}
{{- end }}
