"""Record formats whose values name a schema in a registry: ``avro`` (Confluent wire format, or
the Azure Schema Registry's ``avro/binary+<id>`` content type) and ``jsonschema`` (Confluent wire
format). See docs/formats.md.

- :mod:`shared.formats.registry`: schemas by id from the registries, fetched once per process,
  and the split between a bad record and a registry that cannot answer now;
- :mod:`shared.formats.wire`: the framing of a record (which registry, which schema id, which bytes);
- :mod:`shared.formats.avro`: Avro decoding (fastavro) into values the client mapping reads;
- :mod:`shared.formats.encoder`: the pipeline encoder of the schema formats;
- :mod:`shared.formats.infer`: ADX columns inferred from an Avro schema or from sample records.
"""
