// Exports of world wassette-tests:mcp-js (wit/world.wit), through jco.
import { progress, log, elicit, sample } from 'wassette:mcp/host@0.1.0';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const text = (t) => ({ tag: 'text', val: t });
const ok = (content, structured) => ({ content, structuredJson: structured, isError: false });
const failed = (why) => ({ content: [text(why)], structuredJson: undefined, isError: true });
const schema = (props, required) => JSON.stringify({ type: 'object', properties: props, required });

export const tools = {
  listTools() {
    return [
      { name: 'js_steps', description: 'Counts to n, reporting progress and logging each step', inputSchemaJson: schema({ n: { type: 'integer', minimum: 1, maximum: 100 } }, ['n']) },
      { name: 'js_ask', description: 'Asks the user for a colour', inputSchemaJson: schema({}, []) },
      { name: 'js_think', description: "Asks the client's model", inputSchemaJson: schema({ q: { type: 'string' } }, ['q']) },
      { name: 'js_big_image', description: 'Answers an image of `mib` MiB (a flood)', inputSchemaJson: schema({ mib: { type: 'integer' } }, ['mib']) },
    ];
  },
  callTool(name, argumentsJson) {
    const args = JSON.parse(argumentsJson);
    if (name === 'js_steps') {
      for (let i = 1; i <= args.n; i++) {
        progress(i, args.n, `step ${i}`);
        log('info', 'js', JSON.stringify({ step: i }));
      }
      return ok([text(`counted to ${args.n}`)], JSON.stringify({ steps: args.n }));
    }
    if (name === 'js_ask') {
      let answer;
      try {
        answer = elicit('Your favourite colour?', schema({ colour: { type: 'string' } }, ['colour']));
      } catch (e) {
        return failed(`could not ask: ${e.payload ?? e}`);
      }
      return ok([text(`${answer.action}: ${answer.contentJson ?? 'nothing'}`)]);
    }
    if (name === 'js_think') {
      const request = { messages: [{ role: 'user', content: { type: 'text', text: args.q } }], maxTokens: 50 };
      try {
        const result = JSON.parse(sample(JSON.stringify(request)));
        return ok([text(`the model says: ${result.content.text}`)]);
      } catch (e) {
        return failed(`could not sample: ${e.payload ?? e}`);
      }
    }
    if (name === 'js_big_image') {
      return ok([{ tag: 'image', val: { data: 'A'.repeat(args.mib * 1024 * 1024), mimeType: 'image/png' } }]);
    }
    return failed(`no tool ${name}`);
  },
};

export const resources = {
  listResources() {
    return [{ uri: 'js://hello', name: 'hello', description: 'A greeting', mimeType: 'text/plain' }];
  },
  listResourceTemplates() {
    return [];
  },
  readResource(uri) {
    if (uri !== 'js://hello') throw `no resource ${uri}`;
    return [{ uri, mimeType: 'text/plain', body: { tag: 'text', val: 'hello from JavaScript' } }];
  },
};

export function picture(alt) {
  return ok([text(alt), { tag: 'image', val: { data: PNG, mimeType: 'image/png' } }]);
}
