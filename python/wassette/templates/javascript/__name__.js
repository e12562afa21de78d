// The functions of the world in wit/world.wit, each an MCP tool.

/** Says hello to `name`. */
export function greet(name) {
  return `Hello, ${name}!`;
}
