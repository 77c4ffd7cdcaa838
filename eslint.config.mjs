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
  {
    // Provider code is shipped by Pulumi's closure serializer, which copies module-level values by
    // value: a Set or Map becomes a plain object (".has is not a function" inside the host) and a
    // Symbol breaks the emitted text. Keep such values inside functions or use arrays/objects.
    files: ["providers/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        { selector: "PrivateIdentifier", message: "Use TS `private`, not `#private`: it breaks Pulumi closure serialization." },
        {
          selector: "Program > VariableDeclaration > VariableDeclarator > NewExpression[callee.name=/^(Set|Map|WeakSet|WeakMap)$/]",
          message: "A module-level Set/Map does not survive Pulumi closure serialization: use an array or a plain object.",
        },
        {
          selector: "Program > ExportNamedDeclaration > VariableDeclaration > VariableDeclarator > NewExpression[callee.name=/^(Set|Map|WeakSet|WeakMap)$/]",
          message: "A module-level Set/Map does not survive Pulumi closure serialization: use an array or a plain object.",
        },
        {
          selector: "Program > VariableDeclaration > VariableDeclarator > CallExpression[callee.name='Symbol']",
          message: "A module-level Symbol breaks Pulumi closure serialization.",
        },
      ],
    },
  },
);
