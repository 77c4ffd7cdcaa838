// The method + path table (moto's urls.py). Each route names its handler; its rate-limit group
// is derived from method and first path segment ("POST /reset"), matching Robot's budgets.
import * as h from "./handlers";
import type { Handler } from "./handlers";
import type { RateGroup } from "./model";

export type HttpMethod = "GET" | "POST" | "DELETE";

export interface Route {
  readonly method: HttpMethod;
  readonly template: string;
  readonly pattern: RegExp;
  readonly paramNames: readonly string[];
  readonly rateGroup: RateGroup;
  readonly handler: Handler;
}

function route(method: HttpMethod, template: string, handler: Handler): Route {
  const paramNames: string[] = [];
  const source = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    paramNames.push(name);
    return "([^/]+)";
  });
  const rateGroup = `${method} /${template.split("/")[1]}` as RateGroup;
  return { method, template, pattern: new RegExp(`^${source}$`), paramNames, rateGroup, handler };
}

export const ROUTES: readonly Route[] = [
  route("GET", "/server", h.listServers),
  route("GET", "/server/{server}", h.getServer),
  route("POST", "/server/{server}", h.renameServer),
  route("GET", "/reset", h.listResets),
  route("GET", "/reset/{server}", h.getReset),
  route("POST", "/reset/{server}", h.postReset),
  route("GET", "/boot/{server}", h.getBoot),
  route("GET", "/boot/{server}/rescue", h.getRescue),
  route("POST", "/boot/{server}/rescue", h.postRescue),
  route("DELETE", "/boot/{server}/rescue", h.deleteRescue),
  route("GET", "/boot/{server}/rescue/last", h.getRescueLast),
  ...(["linux", "vnc", "windows", "plesk", "cpanel"] as const).map((type) => route("DELETE", `/boot/{server}/${type}`, h.deleteOtherBoot(type))),
  route("GET", "/key", h.listKeys),
  route("POST", "/key", h.postKey),
  route("GET", "/key/{fingerprint}", h.getKey),
  route("POST", "/key/{fingerprint}", h.renameKey),
  route("DELETE", "/key/{fingerprint}", h.deleteKey),
  route("GET", "/wol/{server}", h.getWol),
  route("POST", "/wol/{server}", h.postWol),
];

export type RouteMatch =
  | { readonly kind: "found"; readonly route: Route; readonly params: Record<string, string> }
  | { readonly kind: "wrong-method"; readonly allowed: HttpMethod[] }
  | { readonly kind: "not-found" };

/** Path params are URL-decoded; a malformed escape makes the path unknown (404), never a crash. */
export function matchRoute(method: string, path: string): RouteMatch {
  const allowed: HttpMethod[] = [];
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(path);
    if (!match) continue;
    if (candidate.method !== method) {
      allowed.push(candidate.method);
      continue;
    }
    const params: Record<string, string> = {};
    try {
      candidate.paramNames.forEach((name, index) => (params[name] = decodeURIComponent(match[index + 1])));
    } catch {
      return { kind: "not-found" };
    }
    return { kind: "found", route: candidate, params };
  }
  return allowed.length > 0 ? { kind: "wrong-method", allowed } : { kind: "not-found" };
}
