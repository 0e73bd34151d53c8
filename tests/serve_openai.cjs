// serve_openai.cjs - the official `openai` Node package against `rbee serve`
// (run by tests/serve_node.sh, which installs the package and starts the
// server). Prints "ok NAME" / "FAIL NAME" per test and "N passed, N failed".
//
//   node tests/serve_openai.cjs PORT RBEE MODEL OPENAI_DIR
'use strict';
const { execFileSync } = require('child_process');
const { createRequire } = require('module');
const path = require('path');

const [port, rbee, model, openaiDir] = process.argv.slice(2);
const { OpenAI } = createRequire(path.resolve(openaiDir, 'package.json'))('openai');

const KEY = 'test-key';
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60000 });
const PROMPT = 'Once upon a time';
const N = 40;

let passed = 0, failed = 0;
function check(cond, what) {
    if (!cond) throw new Error(what);
}
function eq(a, b, what) {
    if (a !== b) throw new Error(`${what}: ${JSON.stringify(a)} !== ${JSON.stringify(b)}`);
}

// `rbee run --temp 0` minus the echoed prompt: the text the server must give.
function greedy(prompt, n) {
    const out = execFileSync(rbee, ['run', '-m', model, '-p', prompt, '-n', String(n), '--temp', '0', '-t', '1'],
                             { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    check(out.startsWith(prompt), `rbee run did not echo the prompt: ${out}`);
    return out.slice(prompt.length);
}

const tests = {
    async models_list() {
        const list = await client.models.list();
        eq(list.data.length, 1, 'models');
        eq(list.data[0].id, path.basename(model), 'model id');
        eq(list.data[0].object, 'model', 'object');
    },

    async completion_equals_rbee_run() {
        const want = greedy(PROMPT, N);
        const r = await client.completions.create({ model: 'any', prompt: PROMPT, max_tokens: N, temperature: 0 });
        eq(r.object, 'text_completion', 'object');
        eq(r.choices[0].text, want, 'text');
        eq(r.choices[0].finish_reason, 'length', 'finish_reason');
        eq(r.usage.completion_tokens, N, 'completion_tokens');
        eq(r.usage.prompt_tokens, 5, 'prompt_tokens');
    },

    async streamed_completion_concatenates() {
        const want = greedy(PROMPT, N);
        const stream = await client.completions.create({ model: 'any', prompt: PROMPT, max_tokens: N, temperature: 0,
                                                         stream: true });
        let text = '', chunks = 0, finish = null;
        for await (const chunk of stream) {
            chunks++;
            text += chunk.choices[0].text;
            if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
        }
        eq(text, want, 'streamed text');
        check(chunks > 10, `only ${chunks} chunks`);
        eq(finish, 'length', 'finish_reason');
    },

    async concurrent_completions_agree() {
        const want = greedy(PROMPT, N);
        const all = await Promise.all(Array.from({ length: 6 }, () =>
            client.completions.create({ model: 'any', prompt: PROMPT, max_tokens: N, temperature: 0 })));
        for (const r of all) eq(r.choices[0].text, want, 'concurrent text');
    },

    async chat_completion_and_stream() {
        const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me one.' }];
        const r = await client.chat.completions.create({ model: 'any', messages, max_tokens: 24, temperature: 0 });
        eq(r.object, 'chat.completion', 'object');
        eq(r.choices[0].message.role, 'assistant', 'role');
        check(typeof r.choices[0].message.content === 'string', 'content');
        check(['stop', 'length'].includes(r.choices[0].finish_reason), 'finish_reason');
        check(r.usage.prompt_tokens > 10, `prompt_tokens ${r.usage.prompt_tokens}`);
        const stream = await client.chat.completions.create({ model: 'any', messages, max_tokens: 24, temperature: 0,
                                                              stream: true });
        let text = '', role = null;
        for await (const chunk of stream) {
            if (chunk.choices.length === 0) continue;
            const d = chunk.choices[0].delta;
            if (d.role) role = d.role;
            if (d.content) text += d.content;
        }
        eq(role, 'assistant', 'streamed role');
        eq(text, r.choices[0].message.content, 'streamed chat text');
    },

    async errors_are_api_errors() {
        try {
            await client.completions.create({ model: 'any', prompt: 5, max_tokens: 2 });
            throw new Error('a number prompt was accepted');
        } catch (e) {
            check(e instanceof OpenAI.BadRequestError, `not a BadRequestError: ${e}`);
            eq(e.status, 400, 'status');
            check(/prompt/.test(e.message), `message: ${e.message}`);
        }
        const wrong = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'wrong', maxRetries: 0 });
        try {
            await wrong.models.list();
            throw new Error('a wrong key was accepted');
        } catch (e) {
            check(e instanceof OpenAI.AuthenticationError, `not an AuthenticationError: ${e}`);
            eq(e.status, 401, 'status');
        }
    },
};

(async () => {
    for (const [name, fn] of Object.entries(tests)) {
        try {
            await fn();
            passed++;
            console.log(`ok   ${name}`);
        } catch (e) {
            failed++;
            console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
        }
    }
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
})();
