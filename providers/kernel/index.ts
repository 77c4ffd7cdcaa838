// The resource kernel: what is the same for every resource. See providers/README.md for how a
// resource plugs in (LvmGroup is the worked example).
export * from "./resource";
export * from "./config";
export * from "./host-access";
export * from "./provider";
