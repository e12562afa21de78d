// The functions of the world in wit/world.wit, each an MCP tool (WIT's
// kebab-case names are camelCase here). build.sh checks them against the
// world's types (world-check.ts) before it builds.

/** Says hello to `name`. */
export function greet(name: string): string {
  return `Hello, ${name}!`;
}
