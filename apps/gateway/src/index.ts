export { runGateway, startGatewayWith, enrolledState } from './main.ts';
export { Gateway, type GatewayOptions } from './gateway.ts';
export { loadGatewayConfig, GatewayConfigError, GATEWAY_VARIABLES, type GatewayConfig } from './config.ts';
export { enroll, readState, writeState, EnrollmentError, type GatewayState } from './enroll.ts';
export { createLog, type Log } from './log.ts';
export { AddressList } from './addresses.ts';
export { buildProxyV2, parseProxyV2 } from './proxy-protocol.ts';
export { GATEWAY_VERSION } from './version.ts';
