import { expect } from 'chai';
import { createProvider, type ProviderOptions } from '../src/runtime/providers/index.js';
import { ScriptedProvider } from '../src/runtime/providers/scripted.js';
import { ModelProviderError, type ChatMessage, type ModelCallRequest, type ModelProvider } from '../src/runtime/providers/types.js';
import { startFakeAnthropic, startFakeOpenAI, type FakeServer, type FakeServerOptions } from './support/fake-model-servers.js';

const KEY = 'sk-test-0123456789abcdef-SECRET';

const TOOLS = [
  {
    name: 'run_shell',
    description: 'Run a shell command in the sandbox',
    input_schema: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] },
  },
];

/** A conversation with one finished tool round, so the providers' history conversion is exercised. */
const HISTORY: ChatMessage[] = [
  { role: 'user', content: [{ type: 'text', text: 'List the files.' }] },
  {
    role: 'assistant',
    content: [
      { type: 'text', text: 'Let me look.' },
      { type: 'tool_use', id: 'toolu_prev_1', name: 'run_shell', input: { cmd: 'ls' } },
    ],
  },
  { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_prev_1', content: 'a.txt\nb.txt' }] },
];

function request(overrides: Partial<ModelCallRequest> = {}): ModelCallRequest & { deltas: string[] } {
  const deltas: string[] = [];
  return {
    system: 'You are a careful test agent.',
    messages: HISTORY,
    tools: TOOLS,
    turnIndex: 0,
    onTextDelta: (d) => deltas.push(d),
    deltas,
    ...overrides,
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

const dialects = [
  { provider: 'anthropic' as const, start: startFakeAnthropic },
  { provider: 'openai' as const, start: startFakeOpenAI },
];

for (const { provider, start } of dialects) {
  describe(`${provider} provider (fake server, real SDK)`, function () {
    this.timeout(10_000);
    let server: FakeServer;
    const servers: FakeServer[] = [];

    async function setup(opts: FakeServerOptions = {}, providerOpts: ProviderOptions = {}): Promise<ModelProvider> {
      server = await start({ apiKey: KEY, ...opts });
      servers.push(server);
      return createProvider({ provider, apiKey: KEY, baseUrl: server.url, model: 'test-model' }, providerOpts);
    }

    afterEach(async () => {
      await Promise.all(servers.splice(0).map((s) => s.close()));
    });

    it('streams text deltas in order and returns the same text', async () => {
      const model = await setup({ responses: [{ text: 'Hello there, streaming world!' }] });
      const req = request();
      const result = await model.call(req);
      expect(req.deltas.length).to.be.greaterThan(2);
      expect(req.deltas.join('')).to.equal('Hello there, streaming world!');
      expect(result.text).to.equal('Hello there, streaming world!');
      expect(result.toolCalls).to.deep.equal([]);
    });

    it('returns tool calls with their parsed input', async () => {
      const model = await setup({
        responses: [
          {
            text: 'Running two commands.',
            toolCalls: [
              { id: 'call_A', name: 'run_shell', input: { cmd: 'echo "hi there"', opts: { n: 2 } } },
              { id: 'call_B', name: 'run_shell', input: { cmd: 'pwd' } },
            ],
          },
        ],
      });
      const result = await model.call(request());
      expect(result.text).to.equal('Running two commands.');
      expect(result.toolCalls).to.deep.equal([
        { id: 'call_A', name: 'run_shell', input: { cmd: 'echo "hi there"', opts: { n: 2 } } },
        { id: 'call_B', name: 'run_shell', input: { cmd: 'pwd' } },
      ]);
    });

    it('rethrows an error from onTextDelta as it is', async () => {
      const model = await setup({ responses: [{ text: 'one two three' }] });
      const boom = new Error('listener bug');
      const err = await rejection(
        model.call(
          request({
            onTextDelta: () => {
              throw boom;
            },
          }),
        ),
      );
      expect(err).to.equal(boom);
    });

    if (provider === 'openai') {
      it('keeps unparseable tool arguments under _raw', async () => {
        const model = await setup({ responses: [{ toolCalls: [{ id: 'call_X', name: 'run_shell', rawInput: '{"cmd": "ls' }] }] });
        const result = await model.call(request());
        expect(result.toolCalls).to.deep.equal([{ id: 'call_X', name: 'run_shell', input: { _raw: '{"cmd": "ls' } }]);
      });
    }

    it('sends the system prompt, the tools and the converted history', async () => {
      const model = await setup({ responses: [{ text: 'ok' }] });
      await model.call(request());
      expect(server.requests).to.have.length(1);
      const { body, headers } = server.requests[0];
      expect(body.stream).to.equal(true);
      expect(body.model).to.equal('test-model');
      if (provider === 'anthropic') {
        expect(headers.authorization ?? headers['x-api-key']).to.include(KEY);
        expect(body.max_tokens).to.equal(4096);
        expect(body.system).to.equal('You are a careful test agent.');
        expect(body.tools).to.deep.equal(TOOLS);
        expect(body.messages).to.deep.equal([
          { role: 'user', content: [{ type: 'text', text: 'List the files.' }] },
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'Let me look.' },
              { type: 'tool_use', id: 'toolu_prev_1', name: 'run_shell', input: { cmd: 'ls' } },
            ],
          },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_prev_1', content: 'a.txt\nb.txt' }] },
        ]);
      } else {
        expect(headers.authorization).to.equal(`Bearer ${KEY}`);
        expect(body.tools).to.deep.equal([
          { type: 'function', function: { name: TOOLS[0].name, description: TOOLS[0].description, parameters: TOOLS[0].input_schema } },
        ]);
        expect(body.messages).to.deep.equal([
          { role: 'system', content: 'You are a careful test agent.' },
          { role: 'user', content: 'List the files.' },
          {
            role: 'assistant',
            content: 'Let me look.',
            tool_calls: [{ id: 'toolu_prev_1', type: 'function', function: { name: 'run_shell', arguments: '{"cmd":"ls"}' } }],
          },
          { role: 'tool', tool_call_id: 'toolu_prev_1', content: 'a.txt\nb.txt' },
        ]);
      }
    });

    if (provider === 'anthropic') {
      it('drops empty text blocks and the messages they leave empty', async () => {
        const model = await setup({ responses: [{ text: 'ok' }] });
        const messages: ChatMessage[] = [
          { role: 'user', content: [{ type: 'text', text: 'hi' }] },
          { role: 'assistant', content: [{ type: 'text', text: '' }] },
          { role: 'user', content: [{ type: 'text', text: 'still there?' }] },
        ];
        await model.call(request({ messages }));
        expect(server.requests[0].body.messages).to.deep.equal([
          { role: 'user', content: [{ type: 'text', text: 'hi' }] },
          { role: 'user', content: [{ type: 'text', text: 'still there?' }] },
        ]);
      });
    }

    it('converts image blocks to the provider format', async () => {
      const model = await setup({ responses: [{ text: 'A cat.' }] });
      const image: ChatMessage = {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image', media_type: 'image/png', data: 'iVBORw0KGgo=' },
        ],
      };
      await model.call(request({ messages: [image], tools: [] }));
      const { body } = server.requests[0];
      expect(body).not.to.have.property('tools');
      const last = body.messages.at(-1);
      if (provider === 'anthropic') {
        expect(last.content[1]).to.deep.equal({
          type: 'image',
          source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' },
        });
      } else {
        expect(last.content[1]).to.deep.equal({ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } });
      }
    });

    it('maps 401 to a non-retryable error that names the setting and hides the key', async () => {
      const model = await setup({ apiKey: 'the-right-key' });
      const err = await rejection(model.call(request()));
      expect(err).to.be.instanceOf(ModelProviderError);
      const e = err as ModelProviderError;
      expect(e.status).to.equal(401);
      expect(e.retryable).to.equal(false);
      expect(e.message).to.match(/rejected the API key \(HTTP 401\)/);
      expect(e.message).to.include('llm_api_key');
      expect(e.message).not.to.include(KEY);
      expect(server.requests).to.have.length(1); // 401 is not retried
    });

    it('maps 404 to a message about the model and base URL', async () => {
      const model = await setup({ responses: [{ status: 404 }] });
      const err = (await rejection(model.call(request()))) as ModelProviderError;
      expect(err).to.be.instanceOf(ModelProviderError);
      expect(err.retryable).to.equal(false);
      expect(err.message).to.include('test-model').and.include('llm_model').and.include('llm_base_url');
    });

    it('retries 500s in the SDK, then fails retryable', async () => {
      const fail = { status: 500, retryAfterMs: 10 };
      const model = await setup({ responses: [fail, fail, fail] });
      const err = (await rejection(model.call(request()))) as ModelProviderError;
      expect(err).to.be.instanceOf(ModelProviderError);
      expect(err.status).to.equal(500);
      expect(err.retryable).to.equal(true);
      expect(server.requests).to.have.length(3); // first try + maxRetries 2
    });

    it('succeeds when a retry after a 429 gets through', async () => {
      const model = await setup({ responses: [{ status: 429, retryAfterMs: 10 }, { text: 'made it' }] });
      const result = await model.call(request());
      expect(result.text).to.equal('made it');
      expect(server.requests).to.have.length(2);
    });

    it('maps a 429 that outlasts the retries to a retryable rate-limit error', async () => {
      const model = await setup({ responses: [{ status: 429 }] }, { maxRetries: 0 });
      const err = (await rejection(model.call(request()))) as ModelProviderError;
      expect(err.retryable).to.equal(true);
      expect(err.message).to.include('rate limited');
    });

    it('fails retryable, without hanging, when the stream breaks midway', async function () {
      this.timeout(5_000);
      const model = await setup({ responses: [{ text: 'this stream will be cut short', breakMidStream: true }] });
      const req = request();
      const err = (await rejection(model.call(req))) as ModelProviderError;
      expect(err).to.be.instanceOf(ModelProviderError);
      expect(err.retryable).to.equal(true);
      expect(err.message).to.include('stream ended unexpectedly');
      expect(req.deltas.length).to.be.greaterThan(0);
    });

    it('fails retryable when the server cannot be reached', async () => {
      const model = await setup({}, { maxRetries: 0 });
      const url = server.url;
      await server.close();
      const err = (await rejection(model.call(request()))) as ModelProviderError;
      expect(err).to.be.instanceOf(ModelProviderError);
      expect(err.retryable).to.equal(true);
      expect(err.message).to.include(`could not reach ${url}`);
    });

    it('rejects with an AbortError soon after the signal aborts mid-stream', async function () {
      this.timeout(5_000);
      const model = await setup({ responses: [{ text: 'one two three four five six seven eight', delayMs: 150 }] });
      const ac = new AbortController();
      const req = request({ signal: ac.signal });
      let abortedAt = 0;
      req.onTextDelta = (d) => {
        req.deltas.push(d);
        abortedAt = Date.now();
        ac.abort();
      };
      const err = await rejection(model.call(req));
      expect(err.name).to.equal('AbortError');
      // Well before the next 150 ms chunk would have arrived.
      expect(Date.now() - abortedAt).to.be.lessThan(100);
      expect(req.deltas).to.have.length(1);
    });
  });
}

describe('scripted provider', () => {
  const script = {
    turns: [
      { text: 'First turn, with  two spaces.', tool_calls: [{ name: 'run_shell', input: { cmd: 'ls' } }] },
      { text: 'Second turn.' },
    ],
  };

  it('plays the turn named by turnIndex, with deterministic tool call ids', async () => {
    const model = new ScriptedProvider(script);
    const r1 = request({ turnIndex: 1 });
    expect(await model.call(r1)).to.deep.equal({ text: 'Second turn.', toolCalls: [], stopReason: 'end_turn' });

    const r0 = request({ turnIndex: 0 });
    const first = await model.call(r0);
    expect(r0.deltas.length).to.be.greaterThan(3);
    expect(r0.deltas.join('')).to.equal('First turn, with  two spaces.');
    expect(first.toolCalls).to.deep.equal([{ id: 'toolu_scripted_0_0', name: 'run_shell', input: { cmd: 'ls' } }]);
    // Same turn again, same answer: a re-run after a crash must not diverge.
    expect(await model.call(request({ turnIndex: 0 }))).to.deep.equal(first);
  });

  it('returns an empty answer once the turns run out', async () => {
    const r = request({ turnIndex: 2 });
    expect(await new ScriptedProvider(script).call(r)).to.deep.equal({ text: '', toolCalls: [], stopReason: 'end_turn' });
    expect(r.deltas).to.deep.equal([]);
  });

  it('spaces deltas token_delay_ms apart', async () => {
    const text = 'one two three four five six';
    const model = new ScriptedProvider({ turns: [{ text }], token_delay_ms: 20 });
    const started = Date.now();
    const r = request();
    await model.call(r);
    expect(r.deltas).to.have.length(6);
    expect(Date.now() - started).to.be.at.least(5 * 20 * 0.8);
  });

  it('stays asynchronous with no delay', async () => {
    const text = Array.from({ length: 500 }, (_, i) => `w${i}`).join(' ');
    const r = request();
    let sawTick = false;
    setImmediate(() => (sawTick = true));
    const result = await new ScriptedProvider({ turns: [{ text }] }).call(r);
    expect(result.text).to.equal(text);
    expect(r.deltas.join('')).to.equal(text);
    expect(sawTick).to.equal(true);
  });

  it('rejects with an AbortError when aborted', async () => {
    const model = new ScriptedProvider({ turns: [{ text: 'a b c d e f g h' }], token_delay_ms: 50 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 80);
    const started = Date.now();
    const err = await rejection(model.call(request({ signal: ac.signal })));
    expect(err.name).to.equal('AbortError');
    expect(Date.now() - started).to.be.lessThan(200);
  });

  it('says hello once when the agent has no script', async () => {
    const model = createProvider({ provider: 'scripted' });
    expect((await model.call(request())).text).to.equal('Hello from the scripted model.');
    expect((await model.call(request({ turnIndex: 1 }))).text).to.equal('');
  });
});
