{{/* Names and labels. */}}
{{- define "boards.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "boards.fullname" -}}
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

{{- define "boards.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "boards.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "boards.selector" -}}
app.kubernetes.io/name: {{ include "boards.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "boards.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "boards.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "boards.secretName" -}}
{{- default (printf "%s-secrets" (include "boards.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{- define "boards.apiImage" -}}
{{- printf "%s:%s" .Values.image.api.repository (default .Chart.AppVersion .Values.image.api.tag) -}}
{{- end -}}

{{- define "boards.workerImage" -}}
{{- printf "%s:%s" .Values.image.worker.repository (default .Chart.AppVersion .Values.image.worker.tag) -}}
{{- end -}}

{{/* Environment shared by every container: the ConfigMap, then the Secret. */}}
{{- define "boards.envFrom" -}}
- configMapRef:
    name: {{ include "boards.fullname" . }}-config
- secretRef:
    name: {{ include "boards.secretName" . }}
{{- end -}}

{{/* Restarts pods when the configuration changes. */}}
{{- define "boards.configChecksum" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}

{{/* Volumes every pod mounts: a writable /tmp, the storage folder, the config files. */}}
{{- define "boards.volumes" -}}
- name: tmp
  emptyDir: {}
- name: storage
{{- if .Values.storage.local.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.storage.local.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- if or .Values.generatorsYaml .Values.storageConfigYaml }}
- name: config-files
  configMap:
    name: {{ include "boards.fullname" . }}-config
    items:
{{- if .Values.generatorsYaml }}
      - key: generators.yaml
        path: generators.yaml
{{- end }}
{{- if .Values.storageConfigYaml }}
      - key: storage_config.yaml
        path: storage_config.yaml
{{- end }}
{{- end }}
{{- end -}}

{{- define "boards.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: storage
  mountPath: /data/storage
{{- if or .Values.generatorsYaml .Values.storageConfigYaml }}
- name: config-files
  mountPath: /etc/boards
  readOnly: true
{{- end }}
{{- end -}}
