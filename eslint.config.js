// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'bench/results/', 'web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // AssemblyScript: the same syntax, but its own types (usize, f32, v128), decorators such as
    // @inline, and numeric casts written as <T>x; globals come from the AS standard library.
    files: ['assembly/**/*.ts'],
    languageOptions: { parserOptions: { project: null } },
    rules: {
      'no-undef': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_|scratch' }],
      'prefer-const': 'error',
    },
  },
);
