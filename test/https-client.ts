export { httpsRequest, type HttpsResponse } from '../simulators/https-json.ts';
