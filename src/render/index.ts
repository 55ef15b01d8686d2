/** Pure renderers of the files TiUP puts on a host: run scripts, systemd units, config files. */
export { renderRunScript, bashDq, bashWord } from './run-script';
export type { RunScriptOptions } from './run-script';
export { renderSystemdUnit } from './systemd';
export { renderConfig, tiflashDefaults, tiflashLearnerDefaults, compareVersions, DEFAULT_CLUSTER_VERSION } from './config';
export type { ConfigOptions } from './config';
export { mergeConfig, foldMap, flattenMap, stringifyToml, mergeToToml, tiupConfigHeader } from './toml';
export type { ConfigMap } from './toml';
export { renderTemplate, parseTemplate, renderFile, loadTemplate, templatesDir, TemplateError } from './template';
export type { TemplateVars, TemplateValue } from './template';
export {
  joinHostPort,
  listenHostOf,
  pdHostPorts,
  pdClientUrls,
  pdInitialCluster,
  pdAdvertiseClientUrl,
  pdAdvertisePeerUrl,
  pdName,
  portOf,
} from './addresses';
