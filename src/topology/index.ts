/** The TiUP topology model: parse, validate, resolve TiUP's defaults, render, re-emit. */
export * from './types';
export { parseTopology, loadTopology, checkTopology, analyseTopology, type TopologyCheck } from './parse';
export { renderInstanceTable } from './render';
export { topologyToJson, type TopologyJson, type InstanceJson } from './json';
export { instancesToTiupYaml } from './emit';
export { pdInstances, instancesByRole, pdClientUrls, pdEndpoints, instanceAddress, allInstancesInStartOrder, storeAddress } from './query';
export { joinHostPort } from './paths';
export { ROLE_SPECS, AUX_ROLE_SPECS, ALL_ROLE_SPECS, specForRole, specForKey, type RoleSpec, type PortSpec } from './roles';
export { TLS_HANDLING, refusedInstances, tlsCoverageError, type TlsHandling, type RefusedInstance } from './tls-coverage';
