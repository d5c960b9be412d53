{{/*
One NGINX Ingress to the api Service: call with (dict "root" $ "suffix" "" "path" "/" "hosts" (list ...)
"annotations" (dict ...)). TLS, the class and the operator's annotations are shared by all of them.
*/}}
{{- define "smart-trader.ingress" -}}
{{- $root := .root }}
{{- $in := $root.Values.ingress }}
{{- $full := include "smart-trader.fullname" $root }}
{{- $tlsSecret := default (printf "%s-tls" $full) $in.tls.secretName }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $full }}{{ .suffix }}
  labels:
    {{- include "smart-trader.roleLabels" (dict "root" $root "role" "api") | nindent 4 }}
  annotations:
    {{- if $in.tls.enabled }}
    nginx.ingress.kubernetes.io/ssl-redirect: "true"
    nginx.ingress.kubernetes.io/force-ssl-redirect: "true"
    {{- with $in.tls.certManager.clusterIssuer }}
    cert-manager.io/cluster-issuer: {{ . | quote }}
    {{- end }}
    {{- end }}
    {{- range $k, $v := .annotations }}
    {{ $k }}: {{ $v | toString | quote }}
    {{- end }}
    {{- range $k, $v := $in.annotations }}
    {{ $k }}: {{ $v | toString | quote }}
    {{- end }}
spec:
  ingressClassName: {{ $in.className }}
  {{- if $in.tls.enabled }}
  tls:
    - secretName: {{ $tlsSecret }}
      hosts:
        {{- toYaml .hosts | nindent 8 }}
  {{- end }}
  rules:
    {{- range .hosts }}
    - host: {{ . | quote }}
      http:
        paths:
          - path: {{ $.path }}
            pathType: Prefix
            backend:
              service:
                name: {{ $full }}-api
                port:
                  name: http
    {{- end }}
{{- end }}
