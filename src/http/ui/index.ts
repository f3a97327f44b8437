/** The dashboard at /ui (issue 6): see routes.ts. */
export { uiRoutes } from './routes';
