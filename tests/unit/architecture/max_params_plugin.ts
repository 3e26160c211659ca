/**
 * A `deno lint` plugin for the rule "a function takes at most three parameters; past that, an
 * options object": every function declaration, function expression (methods included) and arrow
 * function of `src/` with more than {@link MAX_PARAMS} parameters is reported, its message
 * naming the function (`name(N parameters)`). Run by `params_test.ts`.
 *
 * @module
 */

/** The most parameters a function may take. */
export const MAX_PARAMS = 3;

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/** The name a function goes by: its own, its method's or property's key, or its variable's. */
function nameOf(node: FunctionNode): string {
  if (node.type === "FunctionDeclaration" && node.id) return node.id.name;
  if (node.type === "FunctionExpression" && node.id) return node.id.name;
  const parent = node.parent;
  if (
    (parent.type === "MethodDefinition" || parent.type === "Property") &&
    parent.key.type === "Identifier"
  ) {
    return parent.key.name;
  }
  if (parent.type === "VariableDeclarator" && parent.id.type === "Identifier") {
    return parent.id.name;
  }
  return `<anonymous@${node.range[0]}>`;
}

/**
 * How many parameters a function takes: a rest parameter destructured as a tuple
 * (`...[a, b]`) counts each of its elements, since callers still pass them one by one.
 */
function countParams(node: FunctionNode): number {
  let n = 0;
  for (const p of node.params) {
    n += p.type === "RestElement" && p.argument.type === "ArrayPattern"
      ? p.argument.elements.length
      : 1;
  }
  return n;
}

const plugin: Deno.lint.Plugin = {
  name: "tachikoma",
  rules: {
    "max-params": {
      create(context) {
        const check = (node: FunctionNode) => {
          const n = countParams(node);
          if (n <= MAX_PARAMS) return;
          context.report({ node, message: `${nameOf(node)}(${n} parameters)` });
        };
        return {
          FunctionDeclaration: check,
          FunctionExpression: check,
          ArrowFunctionExpression: check,
        };
      },
    },
  },
};

export default plugin;
