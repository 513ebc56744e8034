// Protobuf field numbers (k8s.io/api generated.proto) of the objects kubectl's generator commands
// send: Namespace, Deployment and Service with what they contain. Only fields with a JSON twin
// that a client may set are listed; server-owned fields and status are ignored.
import type { FieldSchema, MessageSchema } from './protobuf.js';

const str = (json: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({ json, kind: 'string', ...extra });
const int = (json: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({ json, kind: 'int32', ...extra });
const int64 = (json: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({ json, kind: 'int64', ...extra });
const bool = (json: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({ json, kind: 'bool', ...extra });
const msg = (json: string, kind: MessageSchema, extra: Partial<FieldSchema> = {}): FieldSchema => ({ json, kind, ...extra });
const stringMap = (json: string): FieldSchema => ({ json, kind: { map: 'string' } });
const ignore = (json: string): FieldSchema => ({ json, kind: 'ignore' });

const objectMeta: MessageSchema = {
  name: 'ObjectMeta',
  fields: {
    1: str('name'), 2: str('generateName'), 3: str('namespace'), 4: ignore('selfLink'), 5: ignore('uid'),
    6: str('resourceVersion'), 7: ignore('generation'), 8: ignore('creationTimestamp'),
    11: stringMap('labels'), 12: stringMap('annotations'), 14: str('finalizers', { repeated: true }),
  },
};

const labelSelectorRequirement: MessageSchema = {
  name: 'LabelSelectorRequirement',
  fields: { 1: str('key'), 2: str('operator'), 3: str('values', { repeated: true }) },
};

const labelSelector: MessageSchema = {
  name: 'LabelSelector',
  fields: { 1: stringMap('matchLabels'), 2: msg('matchExpressions', labelSelectorRequirement, { repeated: true }) },
};

const containerPort: MessageSchema = {
  name: 'ContainerPort',
  fields: { 1: str('name'), 2: int('hostPort'), 3: int('containerPort'), 4: str('protocol'), 5: str('hostIP') },
};

const envVar: MessageSchema = { name: 'EnvVar', fields: { 1: str('name'), 2: str('value') } };

const resourceRequirements: MessageSchema = {
  name: 'ResourceRequirements',
  fields: { 1: { json: 'limits', kind: { map: 'quantity' } }, 2: { json: 'requests', kind: { map: 'quantity' } } },
};

const container: MessageSchema = {
  name: 'Container',
  fields: {
    1: str('name'), 2: str('image'), 3: str('command', { repeated: true }), 4: str('args', { repeated: true }),
    5: str('workingDir'), 6: msg('ports', containerPort, { repeated: true }), 7: msg('env', envVar, { repeated: true }),
    8: msg('resources', resourceRequirements), 13: str('terminationMessagePath'), 14: str('imagePullPolicy'),
    16: bool('stdin'), 17: bool('stdinOnce'), 18: bool('tty'), 20: str('terminationMessagePolicy'),
  },
};

const podSpec: MessageSchema = {
  name: 'PodSpec',
  fields: {
    2: msg('containers', container, { repeated: true }), 3: str('restartPolicy'),
    4: int64('terminationGracePeriodSeconds', { pointer: true }), 5: int64('activeDeadlineSeconds', { pointer: true }),
    6: str('dnsPolicy'), 7: stringMap('nodeSelector'), 8: str('serviceAccountName'), 9: str('serviceAccount'),
    10: str('nodeName'), 11: bool('hostNetwork'), 12: bool('hostPID'), 13: bool('hostIPC'), 16: str('hostname'),
    17: str('subdomain'), 19: str('schedulerName'), 20: msg('initContainers', container, { repeated: true }),
    24: str('priorityClassName'), 25: int('priority', { pointer: true }), 30: bool('enableServiceLinks', { pointer: true }),
  },
};

const podTemplateSpec: MessageSchema = { name: 'PodTemplateSpec', fields: { 1: msg('metadata', objectMeta), 2: msg('spec', podSpec) } };

const rollingUpdateDeployment: MessageSchema = {
  name: 'RollingUpdateDeployment',
  fields: { 1: { json: 'maxUnavailable', kind: 'intOrString', pointer: true }, 2: { json: 'maxSurge', kind: 'intOrString', pointer: true } },
};

const deploymentSpec: MessageSchema = {
  name: 'DeploymentSpec',
  fields: {
    1: int('replicas', { pointer: true }), 2: msg('selector', labelSelector), 3: msg('template', podTemplateSpec),
    4: msg('strategy', { name: 'DeploymentStrategy', fields: { 1: str('type'), 2: msg('rollingUpdate', rollingUpdateDeployment) } }),
    5: int('minReadySeconds'), 6: int('revisionHistoryLimit', { pointer: true }), 7: bool('paused'),
    9: int('progressDeadlineSeconds', { pointer: true }),
  },
};

const servicePort: MessageSchema = {
  name: 'ServicePort',
  fields: {
    1: str('name'), 2: str('protocol'), 3: int('port'), 4: { json: 'targetPort', kind: 'intOrString' },
    5: int('nodePort'), 6: str('appProtocol', { pointer: true }),
  },
};

const serviceSpec: MessageSchema = {
  name: 'ServiceSpec',
  fields: {
    1: msg('ports', servicePort, { repeated: true }), 2: stringMap('selector'), 3: str('clusterIP'), 4: str('type'),
    5: str('externalIPs', { repeated: true }), 7: str('sessionAffinity'), 8: str('loadBalancerIP'),
    10: str('externalName'), 11: str('externalTrafficPolicy'), 12: int('healthCheckNodePort'),
    13: bool('publishNotReadyAddresses'), 17: str('ipFamilyPolicy', { pointer: true }),
    18: str('clusterIPs', { repeated: true }), 19: str('ipFamilies', { repeated: true }),
    22: str('internalTrafficPolicy', { pointer: true }),
  },
};

function topLevel(name: string, spec: MessageSchema): MessageSchema {
  return { name, fields: { 1: msg('metadata', objectMeta), 2: msg('spec', spec), 3: ignore('status') } };
}

const deleteOptions: MessageSchema = {
  name: 'DeleteOptions',
  fields: {
    1: int64('gracePeriodSeconds', { pointer: true }),
    2: msg('preconditions', { name: 'Preconditions', fields: { 1: str('uid', { pointer: true }), 2: str('resourceVersion', { pointer: true }) } }),
    3: bool('orphanDependents', { pointer: true }), 4: str('propagationPolicy', { pointer: true }),
    5: str('dryRun', { repeated: true }),
  },
};

/** Decodable objects by "apiVersion/Kind" ("*" for kinds every group version has). */
export const protobufSchemas: Record<string, MessageSchema> = {
  '*/DeleteOptions': deleteOptions,
  'v1/Namespace': topLevel('Namespace', { name: 'NamespaceSpec', fields: { 1: str('finalizers', { repeated: true }) } }),
  'v1/Service': topLevel('Service', serviceSpec),
  'v1/Pod': topLevel('Pod', podSpec),
  'apps/v1/Deployment': topLevel('Deployment', deploymentSpec),
};
