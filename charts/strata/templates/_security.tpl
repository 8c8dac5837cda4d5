{{/* Security wiring (docs/security.md): TLS secret and token file mounts,
and the STRATA_* variables that turn TLS, authentication, ACLs, quotas and
limits on. */}}

{{- define "strata.tlsDir" -}}/etc/strata/tls{{- end }}
{{- define "strata.authDir" -}}/etc/strata/auth{{- end }}
{{- define "strata.clientCADir" -}}/etc/strata/client-ca{{- end }}

{{/* The TLS Secret of a role: security.tls.roleSecretNames.<role>, else
security.tls.secretName. Pass (dict "ctx" $ "role" "broker"). */}}
{{- define "strata.tlsSecret" -}}
{{- $t := .ctx.Values.security.tls }}
{{- default $t.secretName (get (default dict $t.roleSecretNames) .role) }}
{{- end }}

{{/* Pod volumes: the role's TLS secret and, for the proxy, the token file
and the client CA. Pass (dict "ctx" $ "proxy" true "role" "proxy"). */}}
{{- define "strata.securityVolumes" -}}
{{- $s := .ctx.Values.security }}
{{- if or $s.tls.enabled (and .proxy $s.auth.tokenSecretName) }}
volumes:
  {{- if $s.tls.enabled }}
  - name: tls
    secret:
      secretName: {{ include "strata.tlsSecret" . }}
  {{- if and .proxy $s.tls.clientCASecretName }}
  - name: client-ca
    secret:
      secretName: {{ $s.tls.clientCASecretName }}
  {{- end }}
  {{- end }}
  {{- if and .proxy $s.auth.tokenSecretName }}
  - name: auth-tokens
    secret:
      secretName: {{ $s.auth.tokenSecretName }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Container mounts matching strata.securityVolumes. */}}
{{- define "strata.securityMounts" -}}
{{- $s := .ctx.Values.security }}
{{- if or $s.tls.enabled (and .proxy $s.auth.tokenSecretName) }}
volumeMounts:
  {{- if $s.tls.enabled }}
  - name: tls
    mountPath: {{ include "strata.tlsDir" . }}
    readOnly: true
  {{- if and .proxy $s.tls.clientCASecretName }}
  - name: client-ca
    mountPath: {{ include "strata.clientCADir" . }}
    readOnly: true
  {{- end }}
  {{- end }}
  {{- if and .proxy $s.auth.tokenSecretName }}
  - name: auth-tokens
    mountPath: {{ include "strata.authDir" . }}
    readOnly: true
  {{- end }}
{{- end }}
{{- end }}

{{/* TLS variables of every server. Certificates are reloaded when the
mounted secret changes. */}}
{{- define "strata.tlsEnv" -}}
{{- if .Values.security.tls.enabled }}
- name: STRATA_TLS_CERT
  value: {{ printf "%s/tls.crt" (include "strata.tlsDir" .) | quote }}
- name: STRATA_TLS_KEY
  value: {{ printf "%s/tls.key" (include "strata.tlsDir" .) | quote }}
- name: STRATA_TLS_CA
  value: {{ printf "%s/ca.crt" (include "strata.tlsDir" .) | quote }}
{{- with .Values.security.tls.serverName }}
- name: STRATA_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
- name: STRATA_TLS_TRUST_DOMAIN
  value: {{ .Values.security.tls.trustDomain | quote }}
{{- end }}
{{- end }}

{{/* The proxy's authentication, ACL, quota and limit variables. */}}
{{- define "strata.proxySecurityEnv" -}}
{{- $s := .Values.security }}
{{- if $s.tls.enabled }}
- name: STRATA_TLS_CLIENT_AUTH
  value: {{ $s.tls.proxyClientAuth | quote }}
{{- if $s.tls.clientCASecretName }}
- name: STRATA_TLS_CLIENT_CA
  value: {{ printf "%s/ca.crt" (include "strata.clientCADir" .) | quote }}
{{- end }}
{{- end }}
{{- if $s.auth.tokenSecretName }}
- name: STRATA_AUTH_TOKEN_FILE
  value: {{ printf "%s/%s" (include "strata.authDir" .) $s.auth.tokenSecretKey | quote }}
{{- end }}
- name: STRATA_AUTH_CLIENT_CERTS
  value: {{ $s.auth.clientCerts | quote }}
- name: STRATA_AUTH_ALLOW_ANONYMOUS
  value: {{ $s.auth.allowAnonymous | quote }}
- name: STRATA_ACLS
  value: {{ $s.auth.acls | quote }}
- name: STRATA_SUPER_USERS
  value: {{ join "," $s.auth.superUsers | quote }}
- name: STRATA_QUOTA_PRODUCE_BYTES
  value: {{ $s.quota.produceBytesPerSec | int64 | quote }}
- name: STRATA_QUOTA_FETCH_BYTES
  value: {{ $s.quota.fetchBytesPerSec | int64 | quote }}
- name: STRATA_MAX_REQUEST_BYTES
  value: {{ $s.limits.maxRequestBytes | int64 | quote }}
- name: STRATA_MAX_CONNS_PER_CLIENT
  value: {{ $s.limits.maxConnsPerClient | int64 | quote }}
- name: STRATA_MAX_HEADERS_PER_RECORD
  value: {{ $s.limits.maxHeadersPerRecord | int64 | quote }}
{{- end }}

{{/* Fails the render on contradictory security values. */}}
{{- define "strata.validateSecurity" -}}
{{- $s := .Values.security }}
{{- if $s.tls.enabled }}
{{- range $role := list "proxy" "broker" "coordinator" }}
{{- if not (include "strata.tlsSecret" (dict "ctx" $ "role" $role)) }}
{{- fail (printf "security.tls.enabled needs security.tls.secretName or security.tls.roleSecretNames.%s (a Secret with tls.crt, tls.key and ca.crt)" $role) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $s.tls.clientCASecretName (not $s.tls.enabled) }}
{{- fail "security.tls.clientCASecretName needs security.tls.enabled" }}
{{- end }}
{{- if and $s.auth.clientCerts (not $s.tls.enabled) }}
{{- fail "security.auth.clientCerts needs security.tls.enabled" }}
{{- end }}
{{- if and $s.auth.clientCerts (eq $s.tls.proxyClientAuth "none") }}
{{- fail "security.auth.clientCerts needs security.tls.proxyClientAuth request or require" }}
{{- end }}
{{- end }}
