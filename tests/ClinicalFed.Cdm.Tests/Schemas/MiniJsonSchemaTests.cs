using ClinicalFed.Testing;
namespace ClinicalFed.Cdm.Tests.Schemas;

/// <summary>Each keyword of the test validator, on an instance it accepts and one it rejects.</summary>
public class MiniJsonSchemaTests
{
    [Theory]
    [InlineData("""{"type": "integer"}""", "3", "3.5")]
    [InlineData("""{"type": ["string", "null"]}""", "null", "1")]
    [InlineData("""{"enum": ["a", null]}""", "null", "\"b\"")]
    [InlineData("""{"const": 1}""", "1.0", "2")]
    [InlineData("""{"minimum": 0, "maximum": 1}""", "0.5", "1.5")]
    [InlineData("""{"minimum": 0}""", "\"text is not a number\"", "-1")]
    [InlineData("""{"minLength": 1, "maxLength": 1}""", "\"é\"", "\"ab\"")]
    [InlineData("""{"pattern": "^[a-z]+$"}""", "\"abc\"", "\"aBc\"")]
    [InlineData("""{"items": {"type": "string"}, "minItems": 1, "maxItems": 2}""", """["a"]""", """["a", 1]""")]
    [InlineData("""{"maxItems": 1}""", "[1]", "[1, 2]")]
    [InlineData("""{"uniqueItems": true}""", "[1, 2]", "[1, 1]")]
    [InlineData("""{"required": ["a"]}""", """{"a": 1}""", """{"b": 1}""")]
    [InlineData("""{"properties": {"a": {"type": "string"}}, "additionalProperties": false}""", """{"a": "x"}""", """{"a": "x", "b": 1}""")]
    [InlineData("""{"properties": {"a": {"type": "string"}}}""", """{"b": 1}""", """{"a": 1}""")]
    [InlineData("""{"additionalProperties": {"type": "integer"}}""", """{"x": 1}""", """{"x": "1"}""")]
    [InlineData("""{"propertyNames": {"pattern": "^[A-Z]"}}""", """{"Ab": 1}""", """{"ab": 1}""")]
    [InlineData("""{"$defs": {"n": {"type": "number"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}""", """{"a": 1}""", """{"a": "1"}""")]
    [InlineData("""{"anyOf": [{"properties": {"k": {"const": "none"}}}, {"required": ["c"]}]}""", """{}""", """{"k": "t"}""")]
    [InlineData("""{"oneOf": [{"type": "integer"}, {"minimum": 2}]}""", "1", "3")]
    [InlineData("""{"allOf": [{"type": "integer"}, {"minimum": 2}]}""", "3", "1")]
    [InlineData("""{"not": {"required": ["a", "b"]}}""", """{"a": 1}""", """{"a": 1, "b": 2}""")]
    [InlineData("""{"if": {"properties": {"s": {"const": 1}}}, "then": {"required": ["t"]}, "else": {"required": ["e"]}}""", """{"s": 1, "t": 0}""", """{"s": 2, "t": 0}""")]
    [InlineData("""{"description": "annotations only", "format": "date-time", "default": 1}""", "\"not a date\"", null)]
    public void Keyword_accepts_and_rejects(string schema, string valid, string? invalid)
    {
        var s = new MiniJsonSchema(System.Text.Json.JsonDocument.Parse(schema).RootElement);
        Assert.Empty(s.Validate(valid));
        if (invalid is not null) Assert.NotEmpty(s.Validate(invalid));
    }

    [Theory]
    [InlineData("""{"unevaluatedProperties": false}""")]
    [InlineData("""{"$ref": "other.schema.json"}""")]
    public void Unimplemented_keyword_or_remote_ref_throws(string schema) =>
        Assert.Throws<NotSupportedException>(() => new MiniJsonSchema(System.Text.Json.JsonDocument.Parse(schema).RootElement).Validate("{}"));
}
