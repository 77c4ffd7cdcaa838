// Tests run on the tsc output in dist/: Pulumi's closure serializer and the dynamic-provider
// host must see the same CommonJS modules a real `pulumi up` sees, not a jest transform.
const common = {
  testEnvironment: "node",
  rootDir: __dirname,
  roots: ["<rootDir>/dist/test"],
  // Stops provider hosts and lab servers a test file left running, so jest always exits.
  setupFilesAfterEnv: ["<rootDir>/dist/test/support/after-each-file.js"],
};

module.exports = {
  projects: [
    // Fast: pure units, the provider harness, a loopback sshd and the Robot emulator. Seconds.
    { ...common, displayName: "fast", testMatch: ["<rootDir>/dist/test/{unit,harness,engine,ssh,robot}/**/*.test.js"] },
    // Lab: real QEMU servers under software emulation. Minutes.
    { ...common, displayName: "lab", testMatch: ["<rootDir>/dist/test/lab/**/*.test.js"] },
  ],
};
