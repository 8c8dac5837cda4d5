{{/* Chart name. */}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: RELEASE-strata, or RELEASE if it contains the chart name. */}}
{{- define "strata.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: pass (dict "ctx" $ "component" "broker"). */}}
{{- define "strata.componentLabels" -}}
{{ include "strata.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.componentSelectorLabels" -}}
{{ include "strata.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "strata.testImage" -}}
{{- $repo := default .Values.image.repository .Values.test.image.repository }}
{{- $tag := default (printf "%s-debug" (default .Chart.AppVersion .Values.image.tag)) .Values.test.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Comma-separated etcd client URLs. */}}
{{- define "strata.etcdEndpoints" -}}
{{- if .Values.etcd.bundled.enabled }}
{{- $fullname := include "strata.fullname" . }}
{{- $urls := list }}
{{- range $i := until (int .Values.etcd.bundled.replicaCount) }}
{{- $urls = append $urls (printf "http://%s-etcd-%d.%s-etcd-headless:2379" $fullname $i $fullname) }}
{{- end }}
{{- if eq (int .Values.etcd.bundled.replicaCount) 1 }}
{{- printf "http://%s-etcd:2379" $fullname }}
{{- else }}
{{- join "," $urls }}
{{- end }}
{{- else }}
{{- join "," .Values.etcd.endpoints }}
{{- end }}
{{- end }}

{{- define "strata.s3Endpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "http://%s-minio:9000" (include "strata.fullname" .) }}
{{- else }}
{{- .Values.s3.endpoint }}
{{- end }}
{{- end }}

{{/* Name of the Secret that holds the S3 keys; empty when there is none. */}}
{{- define "strata.s3SecretName" -}}
{{- if .Values.s3.credentials.existingSecret }}
{{- .Values.s3.credentials.existingSecret }}
{{- else if or .Values.minio.enabled .Values.s3.credentials.accessKey }}
{{- printf "%s-s3" (include "strata.fullname" .) }}
{{- end }}
{{- end }}

{{/* Environment every server shares: etcd, object store, logging. */}}
{{- define "strata.commonEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: STRATA_ETCD_ENDPOINTS
  value: {{ include "strata.etcdEndpoints" . | quote }}
- name: STRATA_ETCD_PREFIX
  value: {{ .Values.etcd.prefix | quote }}
- name: STRATA_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: STRATA_METRICS_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}

{{- define "strata.s3Env" -}}
- name: STRATA_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
{{- with include "strata.s3Endpoint" . }}
- name: STRATA_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: STRATA_S3_REGION
  value: {{ .Values.s3.region | quote }}
{{- with .Values.s3.prefix }}
- name: STRATA_S3_PREFIX
  value: {{ . | quote }}
{{- end }}
- name: STRATA_S3_PATH_STYLE
  value: {{ or .Values.s3.pathStyle .Values.minio.enabled | quote }}
{{- with include "strata.s3SecretName" . }}
- name: STRATA_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.s3.credentials.accessKeyKey }}
- name: STRATA_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.s3.credentials.secretKeyKey }}
{{- end }}
{{- end }}

{{/* Pod fields shared by the three Strata Deployments: pass (dict "ctx" $ "c" .Values.broker). */}}
{{- define "strata.podCommon" -}}
serviceAccountName: {{ include "strata.serviceAccountName" .ctx }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .c.terminationGracePeriodSeconds }}
{{- with .c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Probes on the real health endpoints: gRPC health for readiness (SERVING
once the server finished starting), /healthz for liveness. The kubelet's
gRPC probe speaks no TLS, so with TLS on readiness is a TCP check. */}}
{{- define "strata.probes" -}}
readinessProbe:
  {{- if .tls }}
  tcpSocket:
    port: {{ .port }}
  {{- else }}
  grpc:
    port: {{ .port }}
  {{- end }}
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
    {{- if .tls }}
    scheme: HTTPS
    {{- end }}
  initialDelaySeconds: 10
  periodSeconds: 10
  failureThreshold: 6
{{- end }}

{{/* Fails the render on values that contradict each other. */}}
{{- define "strata.validateValues" -}}
{{- if and (not .Values.etcd.bundled.enabled) (empty .Values.etcd.endpoints) }}
{{- fail "etcd: set etcd.endpoints or enable etcd.bundled" }}
{{- end }}
{{- if and .Values.etcd.bundled.enabled (not (has (int .Values.etcd.bundled.replicaCount) (list 1 3 5))) }}
{{- fail "etcd.bundled.replicaCount must be 1, 3 or 5" }}
{{- end }}
{{- if and .Values.minio.enabled .Values.s3.endpoint }}
{{- fail "s3.endpoint must be empty when minio.enabled is true (the chart points it at the bundled MinIO)" }}
{{- end }}
{{- if and .Values.s3.credentials.existingSecret (or .Values.s3.credentials.accessKey .Values.s3.credentials.secretKey) }}
{{- fail "s3.credentials: set existingSecret or accessKey/secretKey, not both" }}
{{- end }}
{{- if ne (empty .Values.s3.credentials.accessKey) (empty .Values.s3.credentials.secretKey) }}
{{- fail "s3.credentials: set both accessKey and secretKey" }}
{{- end }}
{{- if and .Values.broker.autoscaling.enabled (gt (int .Values.broker.autoscaling.minReplicas) (int .Values.broker.autoscaling.maxReplicas)) }}
{{- fail "broker.autoscaling.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- end }}

{{/*
The address the proxy advertises to Kafka clients: proxy.kafka.advertisedAddr,
or the proxy Service's in-cluster name and Kafka port.
*/}}
{{- define "strata.kafkaAdvertisedAddr" -}}
{{- if .Values.proxy.kafka.advertisedAddr -}}
{{- .Values.proxy.kafka.advertisedAddr -}}
{{- else -}}
{{- printf "%s-proxy.%s.svc:%d" (include "strata.fullname" .) .Release.Namespace (.Values.proxy.kafka.port | int) -}}
{{- end -}}
{{- end }}
