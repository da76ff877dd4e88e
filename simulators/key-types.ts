/** What a simulated device keeps its key in: P-256 as a secure element would, or RSA 2048. (Apart from keys.ts so the CLI can list them without loading forge.) */
export type DeviceKeyType = 'ec' | 'rsa';
export const deviceKeyTypes: readonly DeviceKeyType[] = ['ec', 'rsa'];
