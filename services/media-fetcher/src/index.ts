// The media fetcher: downloads inbound media before the provider's URL expires and archives it.
export {};
