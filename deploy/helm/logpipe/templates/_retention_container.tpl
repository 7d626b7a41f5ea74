{{/* The retention container: a sidecar of each aggregator (archive.type
volume, over that pod's volume) or the one container of its own Deployment
(archive.type s3). */}}
{{- define "logpipe.retentionContainer" -}}
{{- $v := .Values.retention -}}
- name: retention
  image: {{ include "logpipe.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["logpipe-retention", {{ include "logpipe.configArgs" . }}]
  env:
    - {name: LOGPIPE_METRICS_LISTEN, value: "0.0.0.0:9465"}
    {{- with $v.extraEnv }}{{ toYaml . | nindent 4 }}{{ end }}
  ports:
    - {name: ret-metrics, containerPort: 9465}
  resources: {{- toYaml $v.resources | nindent 4 }}
  startupProbe:
    httpGet: {path: /healthz, port: ret-metrics}
    periodSeconds: 2
    failureThreshold: 60
  livenessProbe:
    httpGet: {path: /healthz, port: ret-metrics}
    periodSeconds: 30
  readinessProbe:
    httpGet: {path: /readyz, port: ret-metrics}
    periodSeconds: 30
  securityContext: {{- include "logpipe.securityContext" . | nindent 4 }}
  volumeMounts:
    - {name: config, mountPath: /etc/logpipe, readOnly: true}
    - {name: data, mountPath: /var/lib/logpipe}
    {{- include "logpipe.opensearchMount" (dict "ctx" . "os" $v.opensearch "name" "opensearch-retention") | nindent 4 }}
    {{- include "logpipe.opensearchCaMount" . | nindent 4 }}
    {{- include "logpipe.s3Mount" . | nindent 4 }}
    {{- include "logpipe.kafkaMounts" (dict "ctx" . "kafka" .Values.aggregator.kafka "name" "kafka") | nindent 4 }}
{{- end -}}
