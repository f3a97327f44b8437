/** The drop-in proxy for the official SDKs (issue 5). */
export { proxyDocs, proxyRoutes, sdkError } from './routes';
