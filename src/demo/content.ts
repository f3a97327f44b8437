// Demo content: a support agent's tools, a long system prompt and a handbook,
// long enough to clear Claude's 1,024-token minimum on their own.

export const DEMO_TOOLS = [
  {
    name: 'lookup_order',
    description: 'Find an order by its number and return its status, items and shipping address.',
    input_schema: { type: 'object', properties: { order_number: { type: 'string', description: 'e.g. A-10293' } }, required: ['order_number'] },
  },
  {
    name: 'issue_refund',
    description: 'Refund an order in full or in part. Requires the reason and, for partial refunds, the amount.',
    input_schema: {
      type: 'object',
      properties: { order_number: { type: 'string' }, amount_cents: { type: 'integer', minimum: 1 }, reason: { type: 'string', enum: ['damaged', 'late', 'wrong_item', 'goodwill'] } },
      required: ['order_number', 'reason'],
    },
  },
  {
    name: 'search_handbook',
    description: 'Search the support handbook and return the most relevant sections with their numbers.',
    input_schema: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'integer', default: 3 } }, required: ['query'] },
  },
];

const POLICIES = [
  'Greet the customer by name when it is known, and never ask for information the order already holds.',
  'Quote the handbook section number whenever a policy decides the answer.',
  'Refunds above 200 dollars need a second look: explain that a specialist will confirm within one business day.',
  'Never promise delivery dates the carrier has not confirmed; give the carrier estimate and its source.',
  'If the customer is upset, acknowledge it once, then move to what you can do now.',
  'Keep answers under 120 words unless the customer asks for detail.',
  'Do not reveal internal notes, tool outputs verbatim, or other customers\u2019 data.',
  'When a tool fails, say what you tried and offer the next best step instead of guessing.',
];

export const DEMO_SYSTEM = [
  'You are the customer support agent for Northwind Outfitters, an outdoor equipment retailer.',
  'You answer questions about orders, shipping, returns, refunds and product care, using the tools provided.',
  ...Array.from({ length: 12 }, (_, i) => `Policy ${i + 1}. ${POLICIES[i % POLICIES.length]} Apply this consistently across channels (chat, email, phone follow-ups), and record which policy you applied in your reasoning before answering.`),
  'Style: plain language, short paragraphs, no marketing tone. Use the customer\u2019s units (metric or imperial).',
].join('\n\n');

const SECTIONS = [
  ['Returns', 'Unused items may be returned within 60 days of delivery for a full refund to the original payment method. Worn footwear and opened fuel canisters cannot be returned. The customer pays return shipping unless the item arrived damaged or wrong.'],
  ['Damaged items', 'Ask for a photo of the damage and the packaging. Approve a replacement or refund at once for items under 200 dollars; above that, open a specialist review.'],
  ['Shipping', 'Standard shipping takes 3 to 7 business days; express 1 to 2. Remote areas may take longer. Carriers publish estimates, not guarantees.'],
  ['Warranty', 'Tents, packs and sleeping bags carry a two-year warranty against manufacturing defects. Wear and tear, misuse and UV damage are not covered.'],
  ['Product care', 'Dry tents fully before storage. Wash down with technical soap only, never softener. Re-proof waterproof shells every 20 washes.'],
];

export const DEMO_DOCUMENT = `# Northwind Support Handbook\n\n${Array.from({ length: 4 }, (_, round) =>
  SECTIONS.map(([title, body], i) => `## ${round * SECTIONS.length + i + 1}. ${title}${round ? ` (regional addendum ${round})` : ''}\n\n${body} ${round ? 'Regional carriers and consumer law may extend these terms; the stricter rule for the customer applies.' : ''}`).join('\n\n'),
).join('\n\n')}\n`;

export const DEMO_QUESTIONS = [
  'Where is my order A-10293?',
  'The tent arrived with a torn fly. What now?',
  'Can I return boots I wore once?',
  'How long does express shipping take to Tromsø?',
  'Is UV damage on my pack covered?',
  'How do I store a wet tent?',
  'Can I get a refund of 250 dollars for a late order?',
  'How often should I re-proof my jacket?',
  'Which carrier estimate do you quote?',
];
