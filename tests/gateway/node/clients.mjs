// The official Node SDKs against a Pulsegate gateway: `node clients.mjs CASE` with GATEWAY_URL and GATEWAY_TOKEN set.
// Prints one JSON object: what each SDK returned or raised, for tests/gateway/test_node_sdks.py to check.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const url = process.env.GATEWAY_URL;
const token = process.env.GATEWAY_TOKEN;
const messages = [{ role: "user", content: "Say hello from Node" }];
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: token });
const anthropic = new Anthropic({ baseURL: url, apiKey: token });

async function caught(call) {
  try {
    await call();
    return null;
  } catch (error) {
    return { name: error.constructor.name, status: error.status ?? null };
  }
}

const cases = {
  async answers() {
    const completion = await openai.chat.completions.create({ model: "gpt-4.1", messages, max_tokens: 32 });
    const stream = await openai.chat.completions.create({ model: "gpt-4.1", messages, max_tokens: 32, stream: true });
    let streamed = "";
    let usageChunks = 0;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usageChunks += 1;
    }
    const message = await anthropic.messages.create({ model: "claude-sonnet-4-6", max_tokens: 32, messages });
    const events = anthropic.messages.stream({ model: "claude-sonnet-4-6", max_tokens: 32, messages });
    let anthropicStreamed = "";
    events.on("text", (text) => { anthropicStreamed += text; });
    const final = await events.finalMessage();
    return {
      openai: completion.choices[0].message.content,
      openaiStreamed: streamed,
      usageChunks,
      anthropic: message.content[0].text,
      anthropicStreamed,
      anthropicFinal: final.content[0].text,
      anthropicOutputTokens: final.usage.output_tokens,
    };
  },
  async refused() {
    const badOpenAI = new OpenAI({ baseURL: `${url}/v1`, apiKey: "pgw_" + "x".repeat(40) });
    const badAnthropic = new Anthropic({ baseURL: url, apiKey: "not-a-token" });
    return {
      openai: await caught(() => badOpenAI.chat.completions.create({ model: "gpt-4.1", messages })),
      anthropic: await caught(() => badAnthropic.messages.create({ model: "claude-sonnet-4-6", max_tokens: 8, messages })),
      notFound: await caught(() => openai.embeddings.create({ model: "text-embedding-3-small", input: "x" })),
    };
  },
  async fallback() {
    const message = await anthropic.messages.create({ model: "claude-sonnet-4-6", max_tokens: 32, messages });
    const events = anthropic.messages.stream({ model: "claude-sonnet-4-6", max_tokens: 32, messages });
    const final = await events.finalMessage();
    return {
      type: message.type,
      text: message.content[0].text,
      stopReason: message.stop_reason,
      streamedText: final.content[0].text,
      streamedStopReason: final.stop_reason,
    };
  },
};

const result = await cases[process.argv[2]]();
process.stdout.write(JSON.stringify(result) + "\n");
