// clients.test.mjs — the official client libraries end to end through the proxy: the `ollama`
// JS client streams a chat (and an embed), the `openai` JS client streams
// /v1/chat/completions with baseURL …/v1 and with a baseURL without /v1 (the
// /chat/completions alias).  The text each client assembles through the proxy must equal what
// the same client assembles talking to the simulator directly.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { EMBED_MODEL, MODEL, itest, startSimAndProxy, stopAll } from './harness.mjs';

let sim; let px;
before(async () => ({ sim, px } = await startSimAndProxy()));
after(stopAll);

const messages = [{ role: 'user', content: 'Explain the design of a small HTTP proxy.' }];

async function ollamaChat(url) {
    const o = new Ollama({ host: url });
    let text = ''; let parts = 0; let last = null;
    for await (const part of await o.chat({ model: MODEL, messages, stream: true })) {
        text += part.message.content;
        parts++;
        last = part;
    }
    return { text, parts, last };
}

async function openaiChat(baseURL) {
    const client = new OpenAI({ baseURL, apiKey: 'ollama', maxRetries: 0, timeout: 30000 });
    const { data: stream, response } = await client.chat.completions
        .create({ model: MODEL, messages, stream: true }).withResponse();
    let text = ''; let chunks = 0; let finish = null;
    for await (const chunk of stream) {
        const ch = chunk.choices[0];
        if (ch && ch.delta && ch.delta.content) text += ch.delta.content;
        if (ch && ch.finish_reason) finish = ch.finish_reason;
        chunks++;
    }
    return { text, chunks, finish, level: response.headers.get('x-litebrain-level') };
}

itest('ollama JS client: streamed chat through the proxy equals the direct one', async () => {
    const d = await ollamaChat(sim.url);
    const p = await ollamaChat(px.url);
    assert.ok(d.text.length > 0 && d.parts > 1, 'the sim streamed some text');
    assert.equal(p.text, d.text);
    assert.equal(p.parts, d.parts);
    assert.equal(p.last.done, true);
    assert.deepEqual(p.last, d.last);
});

itest('ollama JS client: embed and list through the proxy', async () => {
    const d = new Ollama({ host: sim.url }); const p = new Ollama({ host: px.url });
    assert.deepEqual(await p.embed({ model: EMBED_MODEL, input: 'hello' }), await d.embed({ model: EMBED_MODEL, input: 'hello' }));
    assert.deepEqual(await p.list(), await d.list());
});

itest('openai JS client: streamed chat with baseURL …/v1', async () => {
    const d = await openaiChat(`${sim.url}/v1`);
    const p = await openaiChat(`${px.url}/v1`);
    assert.ok(d.text.length > 0 && d.chunks > 1);
    assert.equal(p.text, d.text);
    assert.equal(p.chunks, d.chunks);
    assert.equal(p.finish, d.finish);
    assert.match(p.level || '', /^(low|medium|high)$/, 'X-LiteBrain-Level on the response');
    assert.equal(d.level, null);
});

itest('openai JS client: streamed chat with a baseURL without /v1 (alias)', async () => {
    const d = await openaiChat(`${sim.url}/v1`);
    const p = await openaiChat(px.url);
    assert.equal(p.text, d.text);
    assert.equal(p.finish, d.finish);
    assert.match(p.level || '', /^(low|medium|high)$/);
});
