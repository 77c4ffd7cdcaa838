import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // `#private` fields break Pulumi closure serialization of provider objects.
      "no-restricted-syntax": ["error", { selector: "PrivateIdentifier", message: "Use TS `private`, not `#private`: it breaks Pulumi closure serialization." }],
    },
  },
);
