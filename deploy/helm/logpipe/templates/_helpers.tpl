{{/* Names: "<release>-logpipe" unless overridden; every object's name starts
with it, cluster-scoped ones too, so two releases never collide. */}}
{{- define "logpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "logpipe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; "logpipe.labels" takes (dict "ctx" $ "component" "shipper"). */}}
{{- define "logpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "logpipe.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "logpipe.labels" -}}
{{ include "logpipe.selectorLabels" . }}
app.kubernetes.io/part-of: logpipe
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The one image of every workload. */}}
{{- define "logpipe.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Annotations that roll the pods when the configuration changes. */}}
{{- define "logpipe.checksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{- define "logpipe.sasl" -}}
{{- hasPrefix "SASL_" .Values.kafka.securityProtocol -}}
{{- end -}}
{{- define "logpipe.kafkaTls" -}}
{{- or (eq .Values.kafka.securityProtocol "SSL") (eq .Values.kafka.securityProtocol "SASL_SSL") -}}
{{- end -}}

{{/* Secret volumes of a pod: (dict "ctx" $ "kafka" <component's kafka values>
"opensearch" <list of (component opensearch values)> "s3" bool). Mounted
by "logpipe.secretMounts" at /run/secrets/logpipe/<volume>. */}}
{{- define "logpipe.kafkaCredVolume" -}}
{{- if and (eq (include "logpipe.sasl" .ctx) "true") .kafka.existingSecret }}
- name: {{ .name }}
  secret:
    secretName: {{ .kafka.existingSecret }}
    items:
      - {key: {{ .kafka.usernameKey }}, path: username}
      - {key: {{ .kafka.passwordKey }}, path: password}
{{- end }}
{{- end -}}
{{- define "logpipe.kafkaCaVolume" -}}
{{- if and (eq (include "logpipe.kafkaTls" .) "true") .Values.kafka.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret }}
    items: [{key: {{ .Values.kafka.caKey }}, path: ca.pem}]
{{- end }}
{{- end -}}
{{- define "logpipe.kafkaVolumes" -}}
{{- include "logpipe.kafkaCredVolume" . }}
{{- include "logpipe.kafkaCaVolume" .ctx }}
{{- end -}}
{{- define "logpipe.kafkaMounts" -}}
{{- if and (eq (include "logpipe.sasl" .ctx) "true") .kafka.existingSecret }}
- {name: {{ .name }}, mountPath: /run/secrets/logpipe/kafka, readOnly: true}
{{- end }}
{{- if and (eq (include "logpipe.kafkaTls" .ctx) "true") .ctx.Values.kafka.caSecret }}
- {name: kafka-ca, mountPath: /run/secrets/logpipe/kafka-ca, readOnly: true}
{{- end }}
{{- end -}}
{{- define "logpipe.opensearchVolume" -}}
{{- if and .ctx.Values.opensearch.url .os.existingSecret }}
- name: {{ .name }}
  secret:
    secretName: {{ .os.existingSecret }}
    items: [{key: {{ .os.passwordKey }}, path: password}]
{{- end }}
{{- end -}}
{{- define "logpipe.opensearchMount" -}}
{{- if and .ctx.Values.opensearch.url .os.existingSecret }}
- {name: {{ .name }}, mountPath: /run/secrets/logpipe/opensearch, readOnly: true}
{{- end }}
{{- end -}}
{{- define "logpipe.opensearchCaVolume" -}}
{{- if and .Values.opensearch.url .Values.opensearch.caSecret }}
- name: opensearch-ca
  secret:
    secretName: {{ .Values.opensearch.caSecret }}
    items: [{key: {{ .Values.opensearch.caKey }}, path: ca.pem}]
{{- end }}
{{- end -}}
{{- define "logpipe.opensearchCaMount" -}}
{{- if and .Values.opensearch.url .Values.opensearch.caSecret }}
- {name: opensearch-ca, mountPath: /run/secrets/logpipe/opensearch-ca, readOnly: true}
{{- end }}
{{- end -}}
{{- define "logpipe.s3Volume" -}}
{{- if eq .Values.archive.type "s3" }}
- name: s3
  secret: {secretName: {{ .Values.archive.s3.existingSecret }}}
{{- end }}
{{- end -}}
{{- define "logpipe.s3Mount" -}}
{{- if eq .Values.archive.type "s3" }}
- {name: s3, mountPath: /run/secrets/logpipe/s3, readOnly: true}
{{- end }}
{{- end -}}

{{/* The container security context of every daemon but the shipper. */}}
{{- define "logpipe.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{- define "logpipe.podSecurityContext" -}}
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
runAsNonRoot: true
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* Scheduling keys of a component's values. */}}
{{- define "logpipe.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The configuration files, in order (extra.yaml last: it overrides). */}}
{{- define "logpipe.configArgs" -}}
"-c", "/etc/logpipe/logpipe.yaml", "-c", "/etc/logpipe/pipeline.yaml"{{ if .Values.extraConfig }}, "-c", "/etc/logpipe/extra.yaml"{{ end }}
{{- end -}}
{{- define "logpipe.priorityClassName" -}}
{{- if .Values.shipper.priorityClass.create -}}
{{ include "logpipe.fullname" . }}-node-critical
{{- else -}}
{{ .Values.shipper.priorityClass.name }}
{{- end -}}
{{- end -}}

{{/* One --check-config container of the helm test: (dict "ctx" $ "d" (list daemon kafka opensearch)). */}}
{{- define "logpipe.checkContainer" -}}
{{- $name := index .d 0 -}}
{{- $test := .test | default false -}}
{{- with .ctx }}
- name: {{ ternary "test-pipeline" (printf "check-%s" $name) $test }}
  image: {{ include "logpipe.image" . }}
  imagePullPolicy: Always   # run on demand: the registry's image, as a new node would get it
  args: ["logpipe-{{ $name }}", {{ include "logpipe.configArgs" . }}, {{ if $test }}"--test", "/etc/logpipe/pipeline-tests.yaml"{{ else }}"--check-config"{{ end }}]
  resources:
    requests: {cpu: 10m, memory: 32Mi}
    limits: {cpu: 200m, memory: 64Mi}
  securityContext: {{- include "logpipe.securityContext" . | nindent 4 }}
  volumeMounts:
    - {name: config, mountPath: /etc/logpipe, readOnly: true}
    {{- include "logpipe.kafkaMounts" (dict "ctx" . "kafka" (index $.d 1) "name" (printf "kafka-%s" (ternary "shipper" "aggregator" (eq $name "shipper")))) | nindent 4 }}
    {{- if ne $name "shipper" }}
    {{- include "logpipe.opensearchMount" (dict "ctx" . "os" (index $.d 2) "name" (printf "opensearch-%s" $name)) | nindent 4 }}
    {{- include "logpipe.opensearchCaMount" . | nindent 4 }}
    {{- include "logpipe.s3Mount" . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}
