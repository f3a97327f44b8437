// A fixed corpus of handle contents. Its expansions' digests are pinned in
// expansions.json: any change to rendered bytes fails the golden test and must
// come with a RENDERER_VERSION bump.

export const corpus = {
  tools: [
    {
      name: 'get_weather',
      description: 'Current weather for a city.',
      input_schema: { type: 'object', properties: { city: { type: 'string', description: 'City name, e.g. Zürich' }, days: { type: 'integer', minimum: 1, maximum: 10 }, '10': { type: 'string' }, '9': { type: 'string' } }, required: ['city'] },
    },
    { name: 'search_docs', input_schema: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'number', default: 2.50 } } } },
  ],
  system: 'You are a meticulous assistant.\nAnswer in the user\'s language — français, 日本語, or English.\tTabs\u00a0and "quotes" are kept byte-exact. 😀\n',
  document: '# Handbook\n\nPrompt caches match a byte-identical prefix.\r\nWindows line endings stay as they are.\n',
  messages: [
    { role: 'user', content: 'What is the weather in Zürich?' },
    { role: 'assistant', content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { days: 2, city: 'Zürich' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: '12°C, cloudy' }] }, { type: 'text', text: 'And tomorrow?' }] },
    { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==' } }, { type: 'image', source: { type: 'url', url: 'https://example.com/chart.png' } }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_02', name: 'search_docs', input: {} }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_02', content: 'no results', is_error: true }] },
  ],
  sessionBatches: [
    [{ role: 'user', content: 'Hello' }],
    [{ role: 'assistant', content: 'Hi! How can I help?' }, { role: 'user', content: 'Summarise the handbook.' }],
    [{ role: 'assistant', content: [{ type: 'text', text: 'Caches match prefixes.' }] }],
  ],
};
