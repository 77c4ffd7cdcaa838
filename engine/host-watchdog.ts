// Preloaded into the dynamic-provider host (`node -r`): the host is a gRPC server that never exits
// on its own, so when its engine dies without stopping it (SIGKILL, OOM) it would run forever.
// It exits once it has been re-parented.
const engine = process.ppid;
setInterval(() => {
  if (process.ppid !== engine) process.exit(1);
}, 500).unref();
