// OpenAI's cookbook, "How to count tokens with tiktoken", section 7: its example function and messages, for which it
// reports 101 prompt tokens on gpt-4o and 105 on gpt-4 (from its num_tokens_for_tools() and from the API alike).
export const COOKBOOK_FUNCTION = {
  name: 'get_current_weather',
  description: 'Get the current weather in a given location',
  parameters: {
    type: 'object',
    properties: {
      location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
      unit: { type: 'string', description: 'The unit of temperature to return', enum: ['celsius', 'fahrenheit'] },
    },
    required: ['location'],
  },
};
export const COOKBOOK_TOOLS = [{ type: 'function', function: COOKBOOK_FUNCTION }];
export const COOKBOOK_MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant that can answer to questions about the weather.' },
  { role: 'user', content: "What's the weather like in San Francisco?" },
];
