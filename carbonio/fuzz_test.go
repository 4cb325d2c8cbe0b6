package carbonio

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"Body":{"AuthResponse":{"authToken":[{"_content":"0_abc"}],"lifetime":43199999,"_jsns":"urn:zimbraAdmin"}},"Header":{"context":{"_jsns":"urn:zimbra"}},"_jsns":"urn:zimbraSoap"}`,
		`{"Body":{"Fault":{"Code":{"Value":"soap:Sender"},"Reason":{"Text":"no such account"},"Detail":{"Error":[{"Code":"account.NO_SUCH_ACCOUNT"}]}}}}`,
		`{"Body":{"GetFolderResponse":{"folder":[{"id":"1","name":"USER_ROOT","folder":[{"id":"2","name":"Inbox","n":3,"i4next":"4"}],"link":{"name":"x"},"search":[]}]}}}`,
		`{"Body":{"SearchDirectoryResponse":{"account":{"name":"a@b","a":{"n":"x","_content":"y"}},"more":"1","searchTotal":1}}}`,
		`{"Body":[]}`, `[]`, `{"Body":{"GetFolderResponse":"x"}}`, `{"Body":{"Fault":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, want := range []string{"AuthResponse", "GetFolderResponse", "SearchDirectoryResponse"} {
			raw, err := decodeEnvelope("FuzzRequest", want, b)
			if err != nil {
				var ft *Fault
				if !errors.Is(err, ErrUnexpectedAnswer) && !errors.As(err, &ft) {
					t.Fatalf("error of an unknown kind: %v", err)
				}
				continue
			}
			var auth struct {
				AuthToken text `json:"authToken"`
				Lifetime  text `json:"lifetime"`
			}
			_ = unmarshalAnswer("FuzzRequest", raw, &auth)
			_ = auth.Lifetime.int64()
			var folders struct {
				Folder list[folderJSON] `json:"folder"`
			}
			_ = unmarshalAnswer("FuzzRequest", raw, &folders)
			var dir struct {
				Account list[namedJSON] `json:"account"`
				More    text            `json:"more"`
			}
			if unmarshalAnswer("FuzzRequest", raw, &dir) == nil {
				for _, a := range dir.Account {
					_ = a.A.Map()
				}
				_ = dir.More.bool()
			}
		}
	})
}

func FuzzDecodeModule(f *testing.F) {
	for _, s := range []string{
		`{"response":{"mbox1.example.com":{"ok":true,"response":{"operationList":[{"id":"45cd","state":"Started","progress":50,"startTime":1672218757532}]}}},"nested":true,"ok":true}`,
		`{"ok":true,"response":{"operationId":"45cd85f0"}}`,
		`{"ok":false,"error":{"message":"boom"}}`,
		`{"ok":true,"nested":true,"response":{"a":{"ok":false,"message":"x"},"b":{"ok":true,"response":{}}}}`,
		`{"ok":true,"response":{"accounts":["a@b",{"name":"c@d"}]}}`,
		`{"ok":"true"}`, `null`, `{"ok":true,"nested":true,"response":[]}`,
		`{"response":{"mbox1":{"ok":true,"response":{"operationList":[{"id":"1","state":"Finished","type":"Exception"}]}}}}`,
		`{"ok":true,"response":{"operationList":[{"id":"1","state":"Finished","type":"Finished","serverId":"x"}]}}`,
		`{"response":{"operationList":[{"id":"1","type":"Weird"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := parseModule("ZxCore getAllOperations", b)
		if err != nil {
			var me *ModuleError
			if !errors.Is(err, ErrUnexpectedAnswer) && !errors.As(err, &me) {
				t.Fatalf("error of an unknown kind: %v", err)
			}
		}
		for _, r := range res {
			var ans struct {
				OperationList list[opJSON] `json:"operationList"`
			}
			if json.Unmarshal(r.Response, &ans) == nil {
				for _, o := range ans.OperationList {
					for _, done := range []bool{false, true} {
						op := o.op(r.Server, done)
						if op.Outcome == OutcomeSucceeded && op.Type != TypeFinished {
							t.Fatalf("success without type Finished: %+v", op)
						}
						if done && op.Outcome == OutcomeRunning {
							t.Fatalf("a log entry is running: %+v", op)
						}
					}
				}
			}
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range []string{`"x"`, `{"_content":"x"}`, `[{"_content":1}]`, `true`, `1.5e3`, `[[1]]`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v text
		if json.Unmarshal(b, &v) == nil {
			_, _, _ = v.int64(), v.float(), v.bool()
		}
		var l list[text]
		_ = json.Unmarshal(b, &l)
		var a attrs
		if json.Unmarshal(b, &a) == nil {
			_ = a.Map()
		}
	})
}
