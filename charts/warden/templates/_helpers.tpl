{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "warden.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name for every object. */}}
{{- define "warden.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "warden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: warden
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "warden.paperSelectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: paper-exchange
{{- end -}}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "warden.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "warden.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* True when the Prometheus Operator CRDs can be used. */}}
{{- define "warden.monitoringAPI" -}}
{{- if or .Values.monitoring.assumeCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{- define "warden.paperName" -}}
{{- printf "%s-paper" (include "warden.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RBAC rules shared by the ClusterRole and the namespaced Role. */}}
{{- define "warden.rbac.resourceRules" -}}
# Positions and ExchangeAccounts: watched by kopf; finalizers and progress annotations are patched on the object.
- apiGroups: ["trading.warden.dev"]
  resources: ["positions", "exchangeaccounts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["trading.warden.dev"]
  resources: ["positions/status", "exchangeaccounts/status"]
  verbs: ["patch"]
# untrackedPositions: Adopt creates a Position for an exchange position nobody owns (never updates or deletes).
- apiGroups: ["trading.warden.dev"]
  resources: ["positions"]
  verbs: ["create"]
# kopf posts Kubernetes events about the objects it handles.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
{{- define "warden.rbac.secretRules" -}}
# Exchange credentials referenced by ExchangeAccount.spec.credentialsSecretRef: read one by name, never list.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- define "warden.signalsName" -}}
{{- printf "%s-signals" (include "warden.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "warden.signalsSelectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: signals
{{- end -}}
{{- define "warden.signalsServiceAccountName" -}}
{{- if .Values.signals.serviceAccount.create -}}
{{- default (include "warden.signalsName" .) .Values.signals.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.signals.serviceAccount.name -}}
{{- end -}}
{{- end -}}
{{- define "warden.rbac.signalsRules" -}}
# SignalSources: read one by name when a signal names it; its status carries the counts.
- apiGroups: ["trading.warden.dev"]
  resources: ["signalsources"]
  verbs: ["get"]
- apiGroups: ["trading.warden.dev"]
  resources: ["signalsources/status"]
  verbs: ["patch"]
# Positions: create one per signal; a close signal lists its source's (by label) and patches spec.state.
- apiGroups: ["trading.warden.dev"]
  resources: ["positions"]
  verbs: ["create", "list", "patch"]
# ExchangeAccounts: read the apiBaseUrl, for the venue's public price a notional limit is checked at.
- apiGroups: ["trading.warden.dev"]
  resources: ["exchangeaccounts"]
  verbs: ["get"]
# The token Secret named by SignalSource.spec.secretRef: read one by name, never list.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- /* Egress of every Warden pod that talks to the API server, the audit store and exchanges. */ -}}
{{- define "warden.networkPolicy.egress" }}
{{- $np := .Values.networkPolicy }}
    # DNS
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    # The Kubernetes API server
    - ports:
        {{- range $np.apiServer.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $np.apiServer.cidrs }}
      to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      {{- end }}
    # Postgres (the audit store)
    - ports:
        - port: {{ .Values.database.port }}
          protocol: TCP
      {{- with .Values.database.cidrs }}
      to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      {{- end }}
    # Exchange APIs over HTTPS
    - ports:
        {{- range $np.exchange.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $np.exchange.cidrs }}
      to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      {{- end }}
    {{- if .Values.paper.enabled }}
    # The sandbox paper exchange in this release
    - ports:
        - port: {{ .Values.paper.port }}
          protocol: TCP
      to:
        - podSelector:
            matchLabels:
              {{- include "warden.paperSelectorLabels" . | nindent 14 }}
    {{- end }}
{{- end }}
