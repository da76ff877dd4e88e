export { deviceKeyAndCsr } from '../simulators/keys.ts';
