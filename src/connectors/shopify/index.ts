// The Shopify-compatible commerce connector: webhook signatures, lossless JSON, and the mapping
// of Shopify orders, refunds and customers to the canonical model.
export { parseShopifyJson, shopifyIdOf } from './json.js';
export { signShopifyBody, verifyShopifySignature } from './signature.js';
export {
  mapShopifyCancellation,
  mapShopifyCustomer,
  mapShopifyOrder,
  mapShopifyRefund,
  orderIdOf,
  type Mapped,
  type MappingIssue,
  type ShopContext,
} from './mapping.js';
export {
  SHOPIFY_TOPICS,
  interpretShopifyWebhook,
  isTakenTopic,
  type ShopifyTopic,
  type WebhookInterpretation,
} from './webhooks.js';
