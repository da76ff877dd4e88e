export { deviceKeyAndCsr, type DeviceKeyType } from '../simulators/keys.ts';
