using Hl7.Fhir.Model;

namespace ClinicalFed.Cdm.Tests.TestSupport;

/// <summary>The strict-parse helper must actually reject what is not valid FHIR R4, or every test that relies on it
/// proves nothing.</summary>
public class FirelyStrictTests
{
    private const string Valid =
        """{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2000-01-01T05:00:00Z","valueQuantity":{"value":80,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}""";

    [Fact]
    public void Valid_observation_parses()
    {
        var o = FirelyStrict.Parse<Observation>(Valid);
        Assert.Equal("o1", o.Id);
        Assert.Equal(80m, Assert.IsType<Quantity>(o.Value).Value);
    }

    [Theory]
    [InlineData("\"status\":\"final\"", "\"status\":\"done\"")]                                    // not an ObservationStatus code
    [InlineData("\"effectiveDateTime\":\"2000-01-01T05:00:00Z\"", "\"effectiveDateTime\":\"2000-13-01\"")] // bad date
    [InlineData("\"id\":\"o1\"", "\"id\":\"o_1 x\"")]                                               // bad id
    [InlineData("\"status\":\"final\",", "\"status\":\"final\",\"foo\":1,")]                         // unknown element
    [InlineData("\"value\":80", "\"value\":\"80\"")]                                                 // decimal as string
    [InlineData("\"status\":\"final\",", "")]                                                       // missing required status
    public void Invalid_observation_is_refused_with_the_resource_id(string from, string to)
    {
        var json = Valid.Replace(from, to);
        Assert.NotEqual(Valid, json);
        var e = Assert.Throws<FirelyStrictException>(() => FirelyStrict.Parse(json));
        Assert.Contains("Observation/", e.Message);
    }

    [Fact]
    public void Wrong_type_is_refused() =>
        Assert.Throws<FirelyStrictException>(() => FirelyStrict.Parse<Patient>(Valid));
}
