// Price pushes to sales channels: the `channel.price` system action for commerce platforms,
// store tills and marketplace feeds, and the read-back used to verify what a channel shows.
export { commercePriceChannel } from './commerce.js';
export type { CommercePriceChannel, CommercePriceOptions } from './commerce.js';
export { posPriceChannel } from './pos.js';
export type { PosPriceChannel, PosPriceOptions, TillPrice } from './pos.js';
export { decimalOf, minorOf, exponentOf } from './money.js';
export { feedPriceChannel } from './feed.js';
export type { FeedPriceChannel, FeedPriceOptions } from './feed.js';
