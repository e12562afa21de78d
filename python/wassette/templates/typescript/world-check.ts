// Type-checked by build.sh, never built into the component: {{name}}.ts has
// every export of the world, with the types `jco guest-types` wrote to target/types.
import type * as World from "local:{{name}}/{{name}}";
import type * as Tool from "./{{name}}";

export const tool: typeof World = {} as typeof Tool;
