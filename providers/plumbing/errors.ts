// One fix-up for every Error subclass that provider code can reach, at the one place the problem is:
// Pulumi's closure serializer (observed with @pulumi/pulumi 3.270) rebuilds `class X extends Error`
// so that `super(message)` becomes `Error.call(this, message)` — which returns a new error and leaves
// `this` without message or stack — and X.prototype is not linked to Error.prototype, so
// `err instanceof Error` is false inside the dynamic-provider host. The engine would then report
// "undefined" instead of what went wrong. Outside the host this is a no-op.

/** Call last in the constructor of every Error subclass provider code can reach. */
export function keepErrorMessage(err: Error, message: string): void {
  linkToErrorPrototype(err);
  if (err.message !== message) err.message = message;
  if (!err.stack) Error.captureStackTrace(err, err.constructor);
}

function linkToErrorPrototype(err: object): void {
  if (err instanceof Error) return;
  // Walk to the last prototype before Object.prototype (the base class of the chain) and splice
  // Error.prototype in above it, once per class.
  let proto: object | null = Object.getPrototypeOf(err);
  while (proto && Object.getPrototypeOf(proto) && Object.getPrototypeOf(proto) !== Object.prototype) {
    proto = Object.getPrototypeOf(proto);
  }
  if (proto && proto !== Error.prototype) Object.setPrototypeOf(proto, Error.prototype);
}
