/**
 * Server-side consumer filters (`group.<consumerGroup>=<module>` in a topic section): loading
 * at start-up (filter-loader.ts), running one safely (consumer-filter.ts) and turning a `get`
 * slice into the filtered answer (filter-applier.ts).
 */
export { ConsumerFilter, ERROR_LOG_INTERVAL_MS, type ConsumerFilterCounters, type ConsumerFilterSource, type ServerFilterMessage, type ServerMessageFilter } from './consumer-filter.js';
export { applyConsumerFilter, type ApplyFilterOptions, type FilteredSlice, type SliceOrigin } from './filter-applier.js';
export { ConsumerFilters, loadConsumerFilters, type LoadConsumerFiltersOptions } from './filter-loader.js';
