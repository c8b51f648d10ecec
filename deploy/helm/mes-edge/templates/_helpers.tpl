{{/* Names */}}
{{- define "mes-edge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mes-edge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels: call with (dict "ctx" $ "component" "gateway") */}}
{{- define "mes-edge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mes-edge.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mes-edge.labels" -}}
{{ include "mes-edge.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mes-edge
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mes-edge.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod- and container-level security: non-root, read-only root, no escalation, no capabilities */}}
{{- define "mes-edge.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mes-edge.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* topologySpreadConstraints: call with (dict "ctx" $ "component" "gateway") */}}
{{- define "mes-edge.topologySpread" -}}
{{- $t := .ctx.Values.topologySpread -}}
- maxSkew: {{ $t.maxSkew }}
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ $t.zoneWhenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "mes-edge.selectorLabels" . | nindent 6 }}
- maxSkew: {{ $t.maxSkew }}
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: {{ $t.nodeWhenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "mes-edge.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* Environment every Python process shares; REDIS_PASSWORD first: later values expand $(REDIS_PASSWORD) */}}
{{- define "mes-edge.commonEnv" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.redis }}
      key: redis-password
- name: DEPLOYMENT_ENVIRONMENT
  value: {{ .Values.environment | quote }}
{{- with .Values.observability.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{- define "mes-edge.redisUrl" -}}
{{- printf "redis://:$(REDIS_PASSWORD)@%s:%v/%v" .ctx.Values.redis.host .ctx.Values.redis.port .db -}}
{{- end -}}

{{- define "mes-edge.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The writable scratch space every container gets on a read-only root */}}
{{- define "mes-edge.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/* The port of a URL: the explicit one, else 443 for https and 80 for http */}}
{{- define "mes-edge.urlPort" -}}
{{- $u := urlParse . -}}
{{- if regexMatch ":[0-9]+$" $u.host -}}
{{- regexFind "[0-9]+$" $u.host -}}
{{- else -}}
{{- ternary "443" "80" (eq $u.scheme "https") -}}
{{- end -}}
{{- end -}}

{{/* One egress rule: call with (dict "to" <peers> "ports" <list of ports> "protocols" <list>) */}}
{{- define "mes-edge.egressRule" -}}
- to:
    {{- toYaml .to | nindent 4 }}
  ports:
    {{- range $port := .ports }}
    {{- range $proto := $.protocols }}
    - port: {{ $port }}
      protocol: {{ $proto }}
    {{- end }}
    {{- end }}
{{- end -}}

{{/* Egress every mes-edge process needs: DNS, Redis and (when set) the OTLP endpoint; call with
(dict "ctx" $ "elasticsearch" true|false). A peer list that is required and empty fails the render:
an egress rule without peers would allow every destination. */}}
{{- define "mes-edge.egressCommon" -}}
{{- $e := .ctx.Values.networkPolicy.egress -}}
{{- range $name := list "dnsTo" "redisTo" "legacyTo" }}
{{- if not (index $e $name) }}
{{- fail (printf "networkPolicy.egress.%s is empty: list the peers (an egress rule without peers allows every destination)" $name) }}
{{- end }}
{{- end }}
{{- include "mes-edge.egressRule" (dict "to" $e.dnsTo "ports" (list 53) "protocols" (list "UDP" "TCP")) }}
{{ include "mes-edge.egressRule" (dict "to" $e.redisTo "ports" (list .ctx.Values.redis.port) "protocols" (list "TCP")) }}
{{- $obs := list }}
{{- with .ctx.Values.observability.otlpEndpoint }}
{{- $obs = append $obs (include "mes-edge.urlPort" .) }}
{{- end }}
{{- if .elasticsearch }}
{{- with .ctx.Values.observability.elasticsearchUrl }}
{{- $obs = append $obs (include "mes-edge.urlPort" .) }}
{{- end }}
{{- end }}
{{- if and $obs $e.observabilityTo }}
{{ include "mes-edge.egressRule" (dict "to" $e.observabilityTo "ports" (uniq $obs) "protocols" (list "TCP")) }}
{{- end }}
{{- end -}}

{{- define "mes-edge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mes-edge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
