//! Fixtures of the MCP conformance suite as a component speaking
//! wassette:mcp: declared tools with the suite's names, resources, a
//! resource template, prompts and completion.

wit_bindgen::generate!({ world: "conformance", path: "wit", generate_all });

use exports::wassette::mcp::icons::{self, Icon};
use exports::wassette::mcp::prompts::{self, Argument, Message, Prompt, PromptResult, Role};
use exports::wassette::mcp::resources::{self, Resource, ResourceTemplate};
use exports::wassette::mcp::tools::{self, Tool};
use wassette::mcp::host::{self, Action, Level};
use wassette::mcp::types::{Blob, Body, Content, ResourceContents, ResourceLink};

struct Conformance;

/// A 1x1 red PNG and a short silent WAV, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";
const NO_ARGS: &str = r#"{"type":"object","properties":{},"additionalProperties":false}"#;
const SCHEMA_2020_12: &str = r##"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"}},"additionalProperties":false}"##;

fn tool(name: &str, description: &str, schema: &str) -> Tool {
    Tool {
        name: name.into(),
        title: None,
        description: description.into(),
        input_schema_json: schema.into(),
        output_schema_json: None,
    }
}

fn string_arg(name: &str) -> String {
    format!(r#"{{"type":"object","properties":{{"{name}":{{"type":"string"}}}},"required":["{name}"]}}"#)
}

/// A top-level field of a flat JSON object, as text (no JSON parser here:
/// the server checked the arguments against the schema).
fn string_field(json: &str, name: &str) -> String {
    let key = format!("\"{name}\":");
    let Some(at) = json.find(&key) else { return String::new() };
    let rest = json[at + key.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('"') {
        inner.split('"').next().unwrap_or("").to_string()
    } else {
        rest.split([',', '}']).next().unwrap_or("").trim().to_string()
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn failed(why: &str) -> ToolResult {
    ToolResult { content: vec![text(why)], structured_json: None, is_error: true }
}

fn elicited(label: &str, message: &str, schema: &str) -> ToolResult {
    match host::elicit(message, schema) {
        Ok(answer) => {
            let action = match answer.action {
                Action::Accept => "accept",
                Action::Decline => "decline",
                Action::Cancel => "cancel",
            };
            let content = answer.content_json.unwrap_or_else(|| "null".into());
            ok(vec![text(&format!("{label}: action={action}, content={content}"))])
        }
        Err(e) => failed(&e),
    }
}

fn text(t: &str) -> Content {
    Content::Text(t.into())
}

fn embedded(uri: &str, mime: &str, t: &str) -> Content {
    Content::Resource(ResourceContents { uri: uri.into(), mime_type: Some(mime.into()), body: Body::Text(t.into()) })
}

fn ok(content: Vec<Content>) -> ToolResult {
    ToolResult { content, structured_json: None, is_error: false }
}

impl tools::Guest for Conformance {
    fn list_tools() -> Vec<Tool> {
        vec![
            tool("test_simple_text", "Returns simple text", NO_ARGS),
            tool("test_image_content", "Returns an image", NO_ARGS),
            tool("test_audio_content", "Returns audio", NO_ARGS),
            tool("test_embedded_resource", "Returns an embedded resource", NO_ARGS),
            tool("test_multiple_content_types", "Returns text, an image and a resource", NO_ARGS),
            tool("test_error_handling", "Always fails", NO_ARGS),
            tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", SCHEMA_2020_12),
            tool("test_tool_with_logging", "Logs three messages", NO_ARGS),
            tool("test_tool_with_progress", "Reports progress 0, 50, 100 of 100", NO_ARGS),
            tool("test_sampling", "Asks the client's model", &string_arg("prompt")),
            tool("test_elicitation", "Asks the user", &string_arg("message")),
            tool("test_elicitation_sep1034_defaults", "Asks with defaults", NO_ARGS),
            tool("test_elicitation_sep1330_enums", "Asks with enums", NO_ARGS),
            tool(
                "big_image",
                "Answers an image of `mib` MiB of base64 (an abuse)",
                r#"{"type":"object","properties":{"mib":{"type":"integer","minimum":0,"maximum":200}},"required":["mib"]}"#,
            ),
            tool(
                "big_text",
                "Answers `mib` MiB of text (a flood of output)",
                r#"{"type":"object","properties":{"mib":{"type":"integer","minimum":0,"maximum":200}},"required":["mib"]}"#,
            ),
            tool(
                "sleep_ms",
                "Sleeps `ms` milliseconds, reporting progress every 100 ms, then answers",
                r#"{"type":"object","properties":{"ms":{"type":"integer","minimum":0,"maximum":600000}},"required":["ms"]}"#,
            ),
            tool("elicit_loop", "Asks the user again and again, whatever the answer (an abuse)", NO_ARGS),
            tool("test_reconnection", "Answers after 1.5 s (a stream closed meanwhile is resumed)", NO_ARGS),
            tool(
                "flood_logs",
                "Logs `count` times (a flood)",
                r#"{"type":"object","properties":{"count":{"type":"integer"}},"required":["count"]}"#,
            ),
            Tool {
                output_schema_json: Some(
                    r#"{"type":"object","properties":{"sum":{"type":"number"}},"required":["sum"]}"#.into(),
                ),
                ..tool(
                    "add_numbers",
                    "Adds a and b; structured content",
                    r#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}"#,
                )
            },
        ]
    }

    fn call_tool(name: String, arguments_json: String) -> ToolResult {
        match name.as_str() {
            "test_simple_text" => ok(vec![text("This is a simple text response for testing.")]),
            "test_image_content" => ok(vec![Content::Image(Blob { data: PNG.into(), mime_type: "image/png".into() })]),
            "test_audio_content" => ok(vec![Content::Audio(Blob { data: WAV.into(), mime_type: "audio/wav".into() })]),
            "test_embedded_resource" => {
                ok(vec![embedded("test://embedded-resource", "text/plain", "This is an embedded resource content.")])
            }
            "test_multiple_content_types" => ok(vec![
                text("Multiple content types test:"),
                Content::Image(Blob { data: PNG.into(), mime_type: "image/png".into() }),
                embedded("test://mixed-content-resource", "application/json", r#"{"test":"data","value":123}"#),
            ]),
            "test_error_handling" => ToolResult {
                content: vec![text("This tool intentionally returns an error for testing")],
                structured_json: None,
                is_error: true,
            },
            "json_schema_2020_12_tool" => ok(vec![text(&format!("received {arguments_json}"))]),
            "test_tool_with_logging" => {
                for (i, m) in
                    ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate()
                {
                    if i > 0 {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    host::log(Level::Info, None, &format!("\"{m}\""));
                }
                ok(vec![text("Tool with logging executed successfully")])
            }
            "test_tool_with_progress" => {
                for (i, done) in [0.0, 50.0, 100.0].iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    host::progress(*done, Some(100.0), None);
                }
                ok(vec![text("Tool with progress executed successfully")])
            }
            "test_sampling" => {
                let prompt = string_field(&arguments_json, "prompt");
                let request = format!(
                    r#"{{"messages":[{{"role":"user","content":{{"type":"text","text":{}}}}}],"maxTokens":100}}"#,
                    quote(&prompt)
                );
                match host::sample(&request) {
                    Ok(result) => ok(vec![text(&format!("LLM response: {result}"))]),
                    Err(e) => failed(&e),
                }
            }
            "test_elicitation" => {
                let schema = r#"{"type":"object","properties":{"username":{"type":"string","description":"User's response"},"email":{"type":"string","description":"User's email address"}},"required":["username","email"]}"#;
                elicited("User response", &string_field(&arguments_json, "message"), schema)
            }
            "test_elicitation_sep1034_defaults" => {
                let schema = r#"{"type":"object","properties":{"name":{"type":"string","default":"John Doe"},"age":{"type":"integer","default":30},"score":{"type":"number","default":95.5},"status":{"type":"string","enum":["active","inactive","pending"],"default":"active"},"verified":{"type":"boolean","default":true}}}"#;
                elicited("Elicitation completed", "Please review your details", schema)
            }
            "test_elicitation_sep1330_enums" => {
                let schema = r#"{"type":"object","properties":{"untitledSingle":{"type":"string","enum":["option1","option2","option3"]},"titledSingle":{"type":"string","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},"legacyEnum":{"type":"string","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},"untitledMulti":{"type":"array","items":{"type":"string","enum":["option1","option2","option3"]}},"titledMulti":{"type":"array","items":{"anyOf":[{"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}}}"#;
                elicited("Elicitation completed", "Choose your options", schema)
            }
            "big_image" => {
                let mib: usize = string_field(&arguments_json, "mib").parse().unwrap_or(0);
                ok(vec![Content::Image(Blob { data: "A".repeat(mib << 20), mime_type: "image/png".into() })])
            }
            "big_text" => {
                let mib: usize = string_field(&arguments_json, "mib").parse().unwrap_or(0);
                ok(vec![text(&"x".repeat(mib << 20))])
            }
            "sleep_ms" => {
                let ms: u64 = string_field(&arguments_json, "ms").parse().unwrap_or(0);
                let mut slept = 0;
                while slept < ms {
                    let step = (ms - slept).min(100);
                    std::thread::sleep(std::time::Duration::from_millis(step));
                    slept += step;
                    host::progress(slept as f64, Some(ms as f64), None);
                }
                ok(vec![text(&format!("slept {ms} ms"))])
            }
            "elicit_loop" => {
                let mut asked = 0;
                for _ in 0..1000 {
                    let _ = host::elicit("Again?", r#"{"type":"object","properties":{}}"#);
                    asked += 1;
                }
                ok(vec![text(&format!("asked {asked} times"))])
            }
            "test_reconnection" => {
                std::thread::sleep(std::time::Duration::from_millis(1500));
                ok(vec![text("Reconnection test completed successfully")])
            }
            "flood_logs" => {
                let count: u32 = string_field(&arguments_json, "count").parse().unwrap_or(0);
                for i in 0..count {
                    host::log(Level::Debug, Some("flood"), &format!("{i}"));
                }
                ok(vec![text(&format!("logged {count}"))])
            }
            "add_numbers" => {
                // The server checked the arguments against the schema: two numbers.
                let nums: Vec<f64> = arguments_json
                    .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                    .filter_map(|s| s.parse().ok())
                    .collect();
                let sum: f64 = nums.iter().sum();
                ToolResult {
                    content: vec![text(&format!("{sum}"))],
                    structured_json: Some(format!(r#"{{"sum":{sum}}}"#)),
                    is_error: false,
                }
            }
            other => {
                ToolResult { content: vec![text(&format!("no tool {other}"))], structured_json: None, is_error: true }
            }
        }
    }
}

fn resource(uri: &str, name: &str, mime: &str) -> Resource {
    Resource {
        uri: uri.into(),
        name: name.into(),
        title: None,
        description: Some(format!("{name} (a conformance fixture)")),
        mime_type: Some(mime.into()),
    }
}

impl resources::Guest for Conformance {
    fn list_resources() -> Vec<Resource> {
        vec![
            resource("test://static-text", "static-text", "text/plain"),
            resource("test://static-binary", "static-binary", "image/png"),
            resource("test://watched-resource", "watched-resource", "text/plain"),
        ]
    }

    fn list_resource_templates() -> Vec<ResourceTemplate> {
        vec![ResourceTemplate {
            uri_template: "test://template/{id}/data".into(),
            name: "template".into(),
            title: None,
            description: Some("Data for an id".into()),
            mime_type: Some("application/json".into()),
        }]
    }

    fn read_resource(uri: String) -> Result<Vec<ResourceContents>, String> {
        let contents =
            |mime: &str, body: Body| vec![ResourceContents { uri: uri.clone(), mime_type: Some(mime.into()), body }];
        match uri.as_str() {
            "test://static-text" => {
                Ok(contents("text/plain", Body::Text("This is the content of the static text resource.".into())))
            }
            "test://static-binary" => Ok(contents("image/png", Body::Blob(PNG.into()))),
            "test://watched-resource" => Ok(contents("text/plain", Body::Text("Watched.".into()))),
            _ => match uri.strip_prefix("test://template/").and_then(|rest| rest.strip_suffix("/data")) {
                Some(id) if !id.is_empty() && !id.contains('/') => Ok(contents(
                    "application/json",
                    Body::Text(format!(r#"{{"id":"{id}","templateTest":true,"data":"Data for ID: {id}"}}"#)),
                )),
                _ => Err(format!("no resource {uri}")),
            },
        }
    }
}

fn arg(name: &str, required: bool) -> Argument {
    Argument { name: name.into(), description: Some(format!("the {name}")), required }
}

fn prompt(name: &str, arguments: Vec<Argument>) -> Prompt {
    Prompt { name: name.into(), title: None, description: Some(format!("{name} (a conformance fixture)")), arguments }
}

fn user(content: Content) -> Message {
    Message { role: Role::User, content }
}

impl prompts::Guest for Conformance {
    fn list_prompts() -> Vec<Prompt> {
        vec![
            prompt("test_simple_prompt", vec![]),
            prompt("test_prompt_with_arguments", vec![arg("arg1", true), arg("arg2", true)]),
            prompt("test_prompt_with_embedded_resource", vec![arg("resourceUri", true)]),
            prompt("test_prompt_with_image", vec![]),
        ]
    }

    fn get_prompt(name: String, arguments: Vec<(String, String)>) -> Result<PromptResult, String> {
        let get = |k: &str| arguments.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let messages = match name.as_str() {
            "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
            "test_prompt_with_arguments" => {
                vec![user(text(&format!("Prompt with arguments: arg1='{}', arg2='{}'", get("arg1"), get("arg2"))))]
            }
            "test_prompt_with_embedded_resource" => vec![
                user(embedded(&get("resourceUri"), "text/plain", "Embedded resource content for testing.")),
                user(text("Please process the embedded resource above.")),
            ],
            "test_prompt_with_image" => vec![
                user(Content::Image(Blob { data: PNG.into(), mime_type: "image/png".into() })),
                user(text("Please analyze the image above.")),
            ],
            other => return Err(format!("no prompt {other}")),
        };
        Ok(PromptResult { description: None, messages })
    }

    fn complete(name: String, argument: String, value: String) -> Vec<String> {
        let options: &[&str] = match (name.as_str(), argument.as_str()) {
            ("test_prompt_with_arguments", "arg1") => &["test", "testing", "tested"],
            ("test://template/{id}/data", "id") => &["123", "456"],
            _ => &[],
        };
        options.iter().filter(|o| o.starts_with(&value)).map(|o| o.to_string()).collect()
    }
}

fn link(uri: &str) -> Content {
    Content::ResourceLink(ResourceLink {
        uri: uri.into(),
        name: "static-text".into(),
        description: None,
        mime_type: Some("text/plain".into()),
    })
}

impl Guest for Conformance {
    fn rich_echo(text_in: String, count: u32) -> ToolResult {
        let mut content: Vec<Content> = (0..count).map(|_| text(&text_in)).collect();
        content.push(link("test://static-text"));
        ok(content)
    }
}

impl icons::Guest for Conformance {
    fn tool_icons() -> Vec<(String, Vec<Icon>)> {
        let png = Icon {
            src: format!("data:image/png;base64,{PNG}"),
            mime_type: Some("image/png".into()),
            sizes: vec!["1x1".into()],
            theme: None,
        };
        let https = Icon {
            src: "https://example.com/icons/add.svg".into(),
            mime_type: Some("image/svg+xml".into()),
            sizes: vec!["any".into()],
            theme: Some("dark".into()),
        };
        vec![("test_simple_text".into(), vec![png]), ("add_numbers".into(), vec![https])]
    }
}

export!(Conformance);
